package dashboard

import (
	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/web"
)

// contentSecurityPolicy allows only the dashboard's own scripts, styles and connections: no
// inline scripts or styles, no eval, nothing from other hosts. Frames: the dashboard may be
// embedded by pages of its own origin only (a host app that proxies it under a sub-path of its
// site is that origin); other sites cannot frame it.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"

// securityHeaders sets the security headers on every dashboard response.
func (d *Dashboard) securityHeaders(c *fiber.Ctx) error {
	setSecurityHeaders(c)
	return c.Next()
}

func (d *Dashboard) withHeaders(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		setSecurityHeaders(c)
		return h(c)
	}
}

func setSecurityHeaders(c *fiber.Ctx) {
	h := &c.Response().Header
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// static serves the embedded assets. A URL with the asset's current version may be cached
// forever; anything else is revalidated.
func (d *Dashboard) static(c *fiber.Ctx) error {
	a := web.Lookup(c.Params("*"))
	if a == nil {
		return c.Status(fiber.StatusNotFound).SendString("not found")
	}
	etag := `"` + a.Version + `"`
	c.Set(fiber.HeaderETag, etag)
	if c.Query("v") == a.Version {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	if c.Get(fiber.HeaderIfNoneMatch) == etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, a.ContentType)
	return c.Send(a.Data)
}
