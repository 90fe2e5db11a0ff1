package dashboard

import (
	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/web/templates"
)

// nodesPage shows the nodes of the cluster: which are alive, their leases and running jobs.
func (d *Dashboard) nodesPage(c *fiber.Ctx) error {
	nodes, err := d.cfg.Nodes.Nodes(c.UserContext())
	if err != nil {
		d.logger.Error("dashboard: list nodes", "error", err)
		return d.errorPage(c, fiber.StatusInternalServerError, "Nodes unavailable", "The nodes could not be read from the database; try again in a moment.")
	}
	page := view.NewNodesPage(d.layout(c, "Nodes", "nodes"), nodes, d.now())
	return d.render(c, fiber.StatusOK, templates.NodesPageView(page))
}
