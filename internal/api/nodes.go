package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/store"
)

// Nodes is what GET /nodes needs: the nodes of the cluster the server is a node of. The runner
// implements it; a runner that does not leaves the route out.
type Nodes interface {
	Nodes(ctx context.Context) ([]store.Node, error)
}

// nodeView is one node as GET /nodes shows it.
type nodeView struct {
	ID              string   `json:"id"`
	Address         string   `json:"address"`
	Version         string   `json:"version"`
	DefinitionsHash string   `json:"definitionsHash"`
	State           string   `json:"state"`
	Epoch           int64    `json:"epoch"`
	Started         jsonTime `json:"started"`
	Heartbeat       jsonTime `json:"heartbeat"`
	LeaseUntil      jsonTime `json:"leaseUntil"`
	RunningJobs     int      `json:"runningJobs"`
	MaxJobs         int      `json:"maxJobs"`
}

// registerNodes serves GET /nodes: {"nodes":[…]}, sorted as the store lists them; empty for a
// server that is no node of a cluster (without --node-id).
func registerNodes(app *fiber.App, n Nodes, authn fiber.Handler) {
	app.Get("/nodes", authn, func(c *fiber.Ctx) error {
		nodes, err := n.Nodes(c.UserContext())
		if err != nil {
			return err
		}
		views := make([]nodeView, 0, len(nodes))
		for _, nd := range nodes {
			views = append(views, nodeView{
				ID: nd.ID, Address: nd.Address, Version: nd.Version, DefinitionsHash: nd.DefinitionsHash,
				State: string(nd.State), Epoch: nd.Epoch, RunningJobs: nd.Running, MaxJobs: nd.MaxJobs,
				Started: jsonTime(nd.Started), Heartbeat: jsonTime(nd.Heartbeat), LeaseUntil: jsonTime(nd.LeaseUntil),
			})
		}
		return c.JSON(fiber.Map{"nodes": views})
	})
}
