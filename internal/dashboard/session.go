package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/prunner-dev/prunner/internal/auth"
	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/web/templates"
)

// Cookie names. jwtCookie is the one the JSON API also accepts, so that a signed-in browser can
// download logs from the API. sessionCookie remembers when the token expires (not the token),
// so that the login page can say that a session expired after the browser dropped the token.
const (
	jwtCookie     = "jwt"
	sessionCookie = "prunner_session"
	csrfCookie    = "prunner_csrf"
)

// Login messages, by the reason query parameter of the login page.
const (
	reasonExpired   = "expired"
	reasonInvalid   = "invalid"
	reasonSignedOut = "signed_out"
)

// session is the authenticated user of a request.
type session struct {
	User string
	// ViaHeader is true for requests authenticated by an Authorization header.
	ViaHeader bool
}

type sessionKey struct{}
type csrfKey struct{}

func sessionFrom(c *fiber.Ctx) *session {
	s, _ := c.Locals(sessionKey{}).(*session)
	return s
}

// bearerToken returns the token of an Authorization header value of the Bearer scheme.
func bearerToken(header string) (string, bool) {
	scheme, token, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// authenticate checks the request's token: the Authorization header first (a host app's
// proxy), else the jwt cookie. It returns the session, or a login reason ("" when no token was
// sent at all and the session cookie says nothing either).
func (d *Dashboard) authenticate(c *fiber.Ctx) (*session, string) {
	token, viaHeader := bearerToken(c.Get(fiber.HeaderAuthorization))
	if !viaHeader {
		token = c.Cookies(jwtCookie)
	}
	if token == "" {
		// The browser drops the jwt cookie when the token expires; the session cookie
		// remembers when that was.
		if exp, err := strconv.ParseInt(c.Cookies(sessionCookie), 10, 64); err == nil && exp > 0 && !time.Unix(exp, 0).After(d.now()) {
			return nil, reasonExpired
		}
		return nil, ""
	}
	user, err := auth.Verify(d.cfg.Secret, token)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, reasonExpired
		}
		return nil, reasonInvalid
	}
	return &session{User: user, ViaHeader: viaHeader}, ""
}

// auth admits authenticated requests. Pages redirect others to the login page; htmx requests
// get an HX-Redirect there; streams get a 401.
func (d *Dashboard) auth(c *fiber.Ctx) error {
	s, reason := d.authenticate(c)
	if s != nil {
		c.Locals(sessionKey{}, s)
		return c.Next()
	}
	if reason != "" && c.Cookies(jwtCookie) != "" {
		d.clearSession(c)
	}
	next := ""
	switch {
	case c.Get("HX-Request") != "":
		// A fragment request: return to the page that asked for it.
		if u, err := url.Parse(c.Get("HX-Current-URL")); err == nil {
			next = u.RequestURI()
		}
	case c.Method() == fiber.MethodGet && !strings.HasSuffix(c.Path(), "/events"):
		next = string(c.Request().URI().RequestURI())
		if d.cfg.BasePath != "" && !strings.HasPrefix(next, d.cfg.BasePath+"/") {
			next = d.cfg.BasePath + next
		}
	}
	next = d.safeNext(next)
	if next == d.paths.Home() {
		next = ""
	}
	login := d.paths.Login(next)
	if reason != "" {
		login = d.paths.LoginWithReason(reason, next)
	}
	if c.Get("HX-Request") != "" {
		c.Set("HX-Redirect", login)
		return c.Status(fiber.StatusUnauthorized).SendString("")
	}
	if strings.Contains(c.Get(fiber.HeaderAccept), "text/event-stream") {
		return c.Status(fiber.StatusUnauthorized).SendString("sign in again")
	}
	return c.Redirect(login, fiber.StatusSeeOther)
}

// safeNext returns next when it is a dashboard page (so that the login form cannot be used to
// send people elsewhere), else the home page.
func (d *Dashboard) safeNext(next string) string {
	home := d.paths.Home()
	if next == "" || strings.ContainsAny(next, "\\\r\n") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(next, "//") {
		return home
	}
	if ui := strings.TrimSuffix(home, "/"); u.Path != ui && !strings.HasPrefix(u.Path, home) {
		return home
	}
	if strings.HasPrefix(u.Path, d.paths.Login("")) {
		return home
	}
	return next
}

func (d *Dashboard) loginPage(c *fiber.Ctx) error {
	next := d.safeNext(c.Query("next"))
	if s, _ := d.authenticate(c); s != nil && c.Query("reason") == "" {
		return c.Redirect(next, fiber.StatusSeeOther)
	}
	var f *view.Flash
	switch c.Query("reason") {
	case reasonExpired:
		f = &view.Flash{Kind: "warning", Text: "Your session has expired because its token expired. Paste a new token to continue."}
	case reasonInvalid:
		f = &view.Flash{Kind: "error", Text: "Your session's token is not valid for this server any more (was the secret changed?). Paste a new token."}
	case reasonSignedOut:
		f = &view.Flash{Kind: "info", Text: "You are signed out."}
	}
	return d.renderLogin(c, fiber.StatusOK, f, next)
}

func (d *Dashboard) renderLogin(c *fiber.Ctx, status int, f *view.Flash, next string) error {
	if next == d.paths.Home() {
		next = ""
	}
	l := d.layout(c, "Sign in", "")
	l.SignedIn = false
	return d.render(c, status, templates.LoginPageView(view.LoginPage{Layout: l, Flash: f, Next: next}))
}

// loginSubmit checks a pasted token and turns it into a session cookie.
func (d *Dashboard) loginSubmit(c *fiber.Ctx) error {
	next := d.safeNext(c.FormValue("next"))
	if msg := d.crossSite(c); msg != "" {
		return d.renderLogin(c, fiber.StatusForbidden, &view.Flash{Kind: "error", Text: msg}, next)
	}
	token := normalizeToken(c.FormValue("token"))
	if token == "" {
		return d.renderLogin(c, fiber.StatusBadRequest, &view.Flash{Kind: "error", Text: "Paste a token to sign in."}, next)
	}
	if _, err := auth.Verify(d.cfg.Secret, token); err != nil {
		return d.renderLogin(c, fiber.StatusUnauthorized, &view.Flash{Kind: "error", Text: tokenProblem(token, err)}, next)
	}
	exp := tokenExpiry(token)
	d.setSession(c, token, exp)
	return c.Redirect(next, fiber.StatusSeeOther)
}

// normalizeToken accepts a token as people paste it: alone, as "Bearer <jwt>", or as the whole
// "Authorization: Bearer <jwt>" line that `prunner debug` prints.
func normalizeToken(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 14 && strings.EqualFold(s[:14], "authorization:") {
		s = strings.TrimSpace(s[14:])
	}
	if len(s) >= 7 && strings.EqualFold(s[:7], "bearer ") {
		s = strings.TrimSpace(s[7:])
	}
	return strings.Trim(s, `"'`)
}

// tokenProblem says in a sentence why a token was refused.
func tokenProblem(token string, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		if exp := tokenExpiry(token); !exp.IsZero() {
			return "This token expired at " + exp.UTC().Format("2006-01-02 15:04:05 UTC") + ". Paste a fresh one."
		}
		return "This token has expired. Paste a fresh one."
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "This token is not valid yet (its nbf or iat claim lies in the future; is a clock wrong?)."
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "This is not a token: a JWT has three parts separated by dots."
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "This token was not signed with this server's secret (or not with HS256)."
	default:
		return "This token is not valid for this server."
	}
}

// tokenExpiry returns the exp claim of an already verified token (zero when it has none).
func tokenExpiry(token string) time.Time {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return time.Time{}
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}
	}
	return exp.Time
}

// cookiePath is the path of the dashboard's cookies: the whole base path, so that the API
// below it accepts the jwt cookie too.
func (d *Dashboard) cookiePath() string { return d.cfg.BasePath + "/" }

// setSession sets the jwt cookie (HttpOnly, SameSite=Strict) that expires with the token, or
// when the browser closes for a token without exp, and the session cookie that remembers exp.
func (d *Dashboard) setSession(c *fiber.Ctx, token string, exp time.Time) {
	secure := c.Protocol() == "https"
	jc := &fiber.Cookie{Name: jwtCookie, Value: token, Path: d.cookiePath(), HTTPOnly: true, Secure: secure, SameSite: fiber.CookieSameSiteStrictMode}
	sc := &fiber.Cookie{Name: sessionCookie, Value: "0", Path: d.cookiePath(), HTTPOnly: true, Secure: secure, SameSite: fiber.CookieSameSiteStrictMode, SessionOnly: true}
	if exp.IsZero() {
		jc.SessionOnly = true
	} else {
		jc.Expires = exp
		sc.Value = strconv.FormatInt(exp.Unix(), 10)
	}
	c.Cookie(jc)
	c.Cookie(sc)
}

func (d *Dashboard) clearSession(c *fiber.Ctx) {
	for _, name := range []string{jwtCookie, sessionCookie} {
		c.Cookie(&fiber.Cookie{Name: name, Value: "", Path: d.cookiePath(), HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Expires: fasthttp.CookieExpireDelete})
	}
}

func (d *Dashboard) logout(c *fiber.Ctx) error {
	d.clearSession(c)
	return c.Redirect(d.paths.LoginWithReason(reasonSignedOut, ""), fiber.StatusSeeOther)
}

// csrfToken returns the token that forms post back: an HMAC of the browser's random csrf
// cookie (set here when missing). A site that can plant cookies still cannot compute it.
func (d *Dashboard) csrfToken(c *fiber.Ctx) string {
	if t, ok := c.Locals(csrfKey{}).(string); ok {
		return t
	}
	nonce := c.Cookies(csrfCookie)
	if !validNonce(nonce) {
		var b [32]byte
		_, _ = rand.Read(b[:])
		nonce = base64.RawURLEncoding.EncodeToString(b[:])
		c.Cookie(&fiber.Cookie{Name: csrfCookie, Value: nonce, Path: d.cookiePath(), HTTPOnly: true,
			Secure: c.Protocol() == "https", SameSite: fiber.CookieSameSiteStrictMode, SessionOnly: true})
	}
	t := d.csrfFor(nonce)
	c.Locals(csrfKey{}, t)
	return t
}

func validNonce(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

func (d *Dashboard) csrfFor(nonce string) string {
	mac := hmac.New(sha256.New, d.csrfKey)
	mac.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// crossSite returns why a POST must be refused ("" when it may proceed): it came from another
// site (Sec-Fetch-Site, or else Origin against Host), or its CSRF token does not match the
// browser's csrf cookie.
func (d *Dashboard) crossSite(c *fiber.Ctx) string {
	const other = "This form was sent from another site and was refused. Open the dashboard and try again."
	switch site := c.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
		if site == "" {
			if origin := c.Get(fiber.HeaderOrigin); origin != "" {
				u, err := url.Parse(origin)
				if err != nil || u.Host != string(c.Request().Host()) {
					return other
				}
			}
		}
	default:
		return other
	}
	nonce := c.Cookies(csrfCookie)
	sent := c.FormValue("csrf")
	if !validNonce(nonce) || sent == "" || !hmac.Equal([]byte(sent), []byte(d.csrfFor(nonce))) {
		return "The form expired (its security token did not match). Reload the page and try again."
	}
	return ""
}

// sameOrigin refuses cross-site POSTs and POSTs without a valid CSRF token with a 403 page.
func (d *Dashboard) sameOrigin(c *fiber.Ctx) error {
	if msg := d.crossSite(c); msg != "" {
		return d.errorPage(c, fiber.StatusForbidden, "Request refused", msg)
	}
	return c.Next()
}
