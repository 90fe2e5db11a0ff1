package dashboard

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/html"

	"github.com/prunner-dev/prunner/internal/auth"
)

const testSecret = "dashboard-test-secret-0123456789"

// testNonce is a well-formed csrf cookie value.
var testNonce = strings.Repeat("A", 43)

type harness struct {
	t     *testing.T
	app   *fiber.App
	r     *fakeRunner
	d     *Dashboard
	token string
}

func newHarness(t *testing.T, mutate ...func(*Config)) *harness {
	t.Helper()
	app := fiber.New(fiber.Config{Immutable: true, DisableStartupMessage: true})
	r := newFakeRunner()
	cfg := Config{Secret: []byte(testSecret), Now: func() time.Time { return testNow }, PollInterval: 10 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	d := Register(app, cfg, r)
	t.Cleanup(d.Close)
	return &harness{t: t, app: app, r: r, d: d, token: mint(t, jwt.MapClaims{"sub": "ada"})}
}

func mint(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := auth.Mint([]byte(testSecret), claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// request describes one test request. By default it carries the harness's token as a cookie
// and, for POSTs, a valid CSRF cookie and field.
type request struct {
	method  string
	path    string
	form    url.Values
	header  map[string]string
	cookies map[string]string
	// anonymous sends no token; noCSRF sends no CSRF cookie or field.
	anonymous bool
	noCSRF    bool
}

type response struct {
	*http.Response
	body string
}

func (h *harness) do(r request) response {
	h.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	form := url.Values{}
	for k, v := range r.form {
		form[k] = v
	}
	cookies := map[string]string{}
	if !r.anonymous {
		cookies[jwtCookie] = h.token
	}
	if r.method == http.MethodPost {
		if !r.noCSRF {
			cookies[csrfCookie] = testNonce
			if form.Get("csrf") == "" {
				form.Set("csrf", h.d.csrfFor(testNonce))
			}
		}
		body = strings.NewReader(form.Encode())
	}
	for k, v := range r.cookies {
		if v == "" {
			delete(cookies, k)
		} else {
			cookies[k] = v
		}
	}
	req, err := http.NewRequest(r.method, "http://prunner.test"+r.path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = "prunner.test"
	if r.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := h.app.Test(req, -1)
	if err != nil {
		h.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{Response: resp, body: string(data)}
}

func (h *harness) get(path string) response {
	h.t.Helper()
	return h.do(request{path: path})
}

func (h *harness) post(path string, form url.Values) response {
	h.t.Helper()
	return h.do(request{method: http.MethodPost, path: path, form: form})
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status = %d, want %d; body:\n%.2000s", r.StatusCode, status, r.body)
	}
}

func wantRedirect(t *testing.T, r response, location string) {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("status = %d, want 303; body:\n%.1000s", r.StatusCode, r.body)
	}
	if got := r.Header.Get("Location"); got != location {
		t.Fatalf("Location = %q, want %q", got, location)
	}
}

func cookie(r response, name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// HTML helpers.

func parse(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("html.Parse() error: %v", err)
	}
	return doc
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func byTestID(root *html.Node, id string) []*html.Node {
	var out []*html.Node
	walk(root, func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "data-testid") == id {
			out = append(out, n)
		}
	})
	return out
}

func one(t *testing.T, root *html.Node, id string) *html.Node {
	t.Helper()
	nodes := byTestID(root, id)
	if len(nodes) != 1 {
		t.Fatalf("found %d elements with data-testid=%q, want 1", len(nodes), id)
	}
	return nodes[0]
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// assertSafe fails when a hostile string produced markup: an <img>, an inline <script> or an
// event handler attribute.
func assertSafe(t *testing.T, body string) {
	t.Helper()
	walk(parse(t, body), func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "img" || (n.Data == "script" && attr(n, "src") == "") {
			t.Errorf("injected <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
				t.Errorf("<%s> has attribute %s", n.Data, a.Key)
			}
		}
	})
}

// SSE helpers: a real listener, because event streams are written after the handler returns.

func (h *harness) listen() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	go func() { _ = h.app.Listener(ln) }()
	h.t.Cleanup(func() {
		h.d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.app.ShutdownWithContext(ctx)
	})
	return "http://" + ln.Addr().String()
}

type sseEvent struct {
	name, id, data string
}

// openStream requests an event stream and returns its events on a channel that is closed when
// the stream ends.
func (h *harness) openStream(base, path string, header map[string]string) (<-chan sseEvent, *http.Response) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.AddCookie(&http.Cookie{Name: jwtCookie, Value: h.token})
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	events := make(chan sseEvent, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || len(data) > 0 {
					ev.data = strings.Join(data, "\n")
					events <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[len("data: "):])
			}
		}
	}()
	return events, resp
}

// nextEvent waits for the next event called name (others are skipped).
func nextEvent(t *testing.T, events <-chan sseEvent, name string) sseEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended before event %q", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event %q within 5s", name)
		}
	}
}
