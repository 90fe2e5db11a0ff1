package api

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/auth"
)

// userKey is the c.Locals key of the authenticated user (the token's sub claim).
type userKey struct{}

// requireToken admits requests carrying a valid JWT, from the Authorization header
// ("Bearer <jwt>", scheme case-insensitive) or else from the cookie "jwt", and stores the token's
// sub claim for userFrom. Everything else gets 401. Accepted tokens are remembered
// (auth.Verifier): a client sends the same token with every request.
func requireToken(secret []byte) fiber.Handler {
	verifier := auth.NewVerifier(secret)
	return func(c *fiber.Ctx) error {
		token, ok := bearerToken(c.Get(fiber.HeaderAuthorization))
		if !ok {
			token = c.Cookies("jwt")
		}
		if token == "" {
			return unauthorized(c, "missing token")
		}
		user, err := verifier.Verify(token)
		if err != nil {
			return unauthorized(c, "invalid token")
		}
		c.Locals(userKey{}, user)
		return c.Next()
	}
}

func unauthorized(c *fiber.Ctx, msg string) error {
	c.Set(fiber.HeaderWWWAuthenticate, "Bearer")
	return &requestError{status: fiber.StatusUnauthorized, msg: msg}
}

// bearerToken returns the token of an Authorization header value of the Bearer scheme.
func bearerToken(header string) (string, bool) {
	scheme, token, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// userFrom returns the authenticated user of the request ("" when the token had no sub).
func userFrom(c *fiber.Ctx) string {
	user, _ := c.Locals(userKey{}).(string)
	return user
}
