package api

import (
	"context"
	_ "embed"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
)

// openAPISpec is the OpenAPI 3 description of every route; e2e tests validate real responses
// against it, so it stays true.
//
//go:embed openapi.json
var openAPISpec []byte

// readyTimeout bounds a readiness check: a database that does not answer within it makes the
// node unready, rather than the check hanging until the load balancer gives up on it.
const readyTimeout = 5 * time.Second

// registerOps adds the routes for operators: liveness, readiness, metrics and the OpenAPI
// document. Health checks and the document need no token (load balancers and code generators
// have none); metrics do unless cfg.MetricsPublic.
func registerOps(app *fiber.App, cfg Config, authn fiber.Handler) {
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		if cfg.Ready != nil {
			ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
			defer cancel()
			if err := cfg.Ready(ctx); err != nil {
				return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": err.Error()})
			}
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
	app.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		return c.Send(openAPISpec)
	})
	if cfg.Metrics != nil {
		h := adaptor.HTTPHandler(cfg.Metrics)
		if cfg.MetricsPublic {
			app.Get("/metrics", h)
		} else {
			app.Get("/metrics", authn, h)
		}
	}
}
