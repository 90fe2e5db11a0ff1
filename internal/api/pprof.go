package api

import (
	"net/http/pprof"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
)

// registerPprof serves the net/http/pprof handlers under /debug/pprof/, behind authn.
//
// /debug/pprof/cmdline is deliberately not served: the command line may carry --jwt-secret.
func registerPprof(app *fiber.App, authn fiber.Handler) {
	index := adaptor.HTTPHandlerFunc(pprof.Index)
	profile := adaptor.HTTPHandlerFunc(pprof.Profile)
	symbol := adaptor.HTTPHandlerFunc(pprof.Symbol)
	trace := adaptor.HTTPHandlerFunc(pprof.Trace)

	app.Get("/debug/pprof/*", authn, func(c *fiber.Ctx) error {
		switch c.Params("*") {
		case "":
			if c.Path() != "/debug/pprof/" {
				// The index page links relatively; it only works under the slash.
				return c.Redirect("/debug/pprof/", fiber.StatusMovedPermanently)
			}
			return index(c)
		case "cmdline":
			return fiber.ErrNotFound
		case "profile":
			return profile(c)
		case "symbol":
			return symbol(c)
		case "trace":
			return trace(c)
		default:
			// Index serves the named profiles (heap, goroutine, …) by path.
			return index(c)
		}
	})
	app.Post("/debug/pprof/symbol", authn, symbol)
}
