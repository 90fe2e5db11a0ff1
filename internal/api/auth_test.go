package api

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// publicRoutes lists "METHOD path" of routes that deliberately need no JWT: health checks for load
// balancers and the OpenAPI document. A new public route must be added here on purpose.
var publicRoutes = map[string]bool{
	"GET /healthz": true, "HEAD /healthz": true,
	"GET /readyz": true, "HEAD /readyz": true,
	"GET /openapi.json": true, "HEAD /openapi.json": true,
}

// routeTarget turns a route pattern into a request target that would succeed with a valid token,
// so that a 401 can only come from the auth check.
func routeTarget(path string) string {
	path = strings.ReplaceAll(path, "*", "heap")
	var segs []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, ":") {
			seg = "x"
		}
		segs = append(segs, seg)
	}
	if path == "/job/logs/live" {
		// The live stream of a running task lasts until the task ends: follow a finished one.
		return path + "?id=" + jobFinishedID + "&task=build"
	}
	return strings.Join(segs, "/") + "?id=" + jobRunningID + "&task=build"
}

func TestEveryRouteRejectsBadTokens(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := jwt.MapClaims{"sub": "alice"}

	type credential struct {
		header string // Authorization header value ("" = none)
		cookie string // jwt cookie value ("" = none)
	}
	bad := map[string]credential{
		"no token":       {},
		"empty bearer":   {header: "Bearer "},
		"wrong secret":   {header: "Bearer " + sign(jwt.SigningMethodHS256, []byte("another-secret-0123456789"), valid)},
		"alg none":       {header: "Bearer " + sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)},
		"HS384":          {header: "Bearer " + sign(jwt.SigningMethodHS384, testSecret, valid)},
		"RS256":          {header: "Bearer " + sign(jwt.SigningMethodRS256, rsaKey, valid)},
		"expired":        {header: "Bearer " + sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "a", "exp": now.Add(-time.Minute).Unix()})},
		"nbf in future":  {header: "Bearer " + sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})},
		"iat in future":  {header: "Bearer " + sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"iat": now.Add(time.Hour).Unix()})},
		"malformed":      {header: "Bearer not-a-jwt"},
		"garbage parts":  {header: "Bearer a.b.c"},
		"basic scheme":   {header: "Basic " + sign(jwt.SigningMethodHS256, testSecret, valid)},
		"raw token":      {header: sign(jwt.SigningMethodHS256, testSecret, valid)},
		"cookie wrong":   {cookie: sign(jwt.SigningMethodHS256, []byte("another-secret-0123456789"), valid)},
		"cookie expired": {cookie: sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})},
		// A bad bearer token is not rescued by a good cookie.
		"bad header good cookie": {header: "Bearer not-a-jwt", cookie: sign(jwt.SigningMethodHS256, testSecret, valid)},
	}
	good := map[string]credential{
		"bearer":            {header: "Bearer " + sign(jwt.SigningMethodHS256, testSecret, valid)},
		"lower-case scheme": {header: "bearer " + sign(jwt.SigningMethodHS256, testSecret, valid)},
		"upper-case scheme": {header: "BEARER " + sign(jwt.SigningMethodHS256, testSecret, valid)},
		"no claims":         {header: "Bearer " + sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{})},
		"cookie":            {cookie: sign(jwt.SigningMethodHS256, testSecret, valid)},
	}

	e := newTestEnv(t, func(c *Config) { c.EnableProfiling = true })
	seed(e.runner)
	routes := e.app.GetRoutes(true)
	if len(routes) < 10 {
		t.Fatalf("only %d routes", len(routes))
	}
	request := func(method, target string, cred credential) *http.Request {
		var body *strings.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"pipeline":"release_it"}`)
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest(method, target, body)
		if cred.header != "" {
			req.Header.Set("Authorization", cred.header)
		}
		if cred.cookie != "" {
			req.AddCookie(&http.Cookie{Name: "jwt", Value: cred.cookie})
		}
		return req
	}
	for _, route := range routes {
		key := route.Method + " " + route.Path
		if publicRoutes[key] {
			continue
		}
		target := routeTarget(route.Path)
		for name, cred := range bad {
			resp, body := e.send(t, request(route.Method, target, cred))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with %s: status %d, want 401", key, name, resp.StatusCode)
				continue
			}
			if route.Method != http.MethodHead {
				wantError(t, resp, body, http.StatusUnauthorized, "")
			}
		}
		for name, cred := range good {
			if route.Method == http.MethodPost && route.Path == "/pipelines/schedule" && name != "bearer" {
				continue // keep the fake runner's schedule list short
			}
			resp, body := e.send(t, request(route.Method, target, cred))
			if resp.StatusCode == http.StatusUnauthorized {
				t.Errorf("%s with %s: 401 (%s), want accepted", key, name, body)
			}
		}
	}
}
