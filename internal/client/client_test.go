package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		address, want, wantErr string
	}{
		{"localhost:9009", "http://localhost:9009", ""},
		{":9009", "http://localhost:9009", ""},
		{"0.0.0.0:9009", "http://localhost:9009", ""},
		{"http://example.org:8080/prunner/", "http://example.org:8080/prunner", ""},
		{"https://example.org", "https://example.org", ""},
		{"localhost", "", "want host:port or a URL"},
		{"", "", "no server address"},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			t.Parallel()
			u, err := BaseURL(tt.address)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", u, err, tt.want)
			}
		})
	}
}

// fakeServer answers every request with status and body and records the last request.
func fakeServer(t *testing.T, status int, body string) (*Client, *http.Request) {
	t.Helper()
	var last http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last = *r.Clone(context.Background())
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/base", "tok")
	if err != nil {
		t.Fatal(err)
	}
	return c, &last
}

func TestRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name             string
		body             string
		call             func(c *Client) error
		wantMethod       string
		wantPathAndQuery string
	}{
		{"jobs", `{"jobs":[{"id":"a","status":"running"}]}`, func(c *Client) error {
			l, err := c.Jobs(ctx, JobQuery{Pipeline: "p", Status: "failed,canceled", Limit: 5})
			if err == nil && (len(l.Jobs) != 1 || l.Jobs[0].ID != "a" || string(l.Raw) == "") {
				err = errors.New("unexpected list")
			}
			return err
		}, "GET", "/base/jobs?limit=5&pipeline=p&status=failed%2Ccanceled"},
		{"job", `{"id":"a","status":"succeeded"}`, func(c *Client) error {
			j, err := c.Job(ctx, "a")
			if err == nil && !j.Ended() {
				err = errors.New("a succeeded job has ended")
			}
			return err
		}, "GET", "/base/job/detail?id=a"},
		{"cancel", `true`, func(c *Client) error { return c.Cancel(ctx, "a") }, "POST", "/base/job/cancel?id=a"},
		{"schedule", `{"jobId":"j"}`, func(c *Client) error {
			id, err := c.Schedule(ctx, ScheduleRequest{Pipeline: "p"})
			if err == nil && id != "j" {
				err = errors.New("wrong id " + id)
			}
			return err
		}, "POST", "/base/pipelines/schedule"},
		{"logs", `{"stdout":"o","stderr":"e"}`, func(c *Client) error {
			l, err := c.Logs(ctx, "a", "t")
			if err == nil && (l.Stdout != "o" || l.Stderr != "e") {
				err = errors.New("wrong logs")
			}
			return err
		}, "GET", "/base/job/logs?id=a&task=t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, last := fakeServer(t, 200, tt.body)
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if last.Method != tt.wantMethod || last.URL.RequestURI() != tt.wantPathAndQuery {
				t.Errorf("request %s %s, want %s %s", last.Method, last.URL.RequestURI(), tt.wantMethod, tt.wantPathAndQuery)
			}
			if got := last.Header.Get("Authorization"); got != "Bearer tok" {
				t.Errorf("Authorization %q", got)
			}
		})
	}
}

func TestAPIError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
		status           int
	}{
		{"the API's message", `{"error":"Job not found"}`, "Job not found", 404},
		{"another body as it is", "Bad Gateway from proxy", "Bad Gateway from proxy", 502},
		{"no body: the status", "", "401 Unauthorized", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := fakeServer(t, tt.status, tt.body)
			err := c.Cancel(context.Background(), "x")
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status || apiErr.Message != tt.want {
				t.Fatalf("error %#v, want %d %q", err, tt.status, tt.want)
			}
		})
	}
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stream  string
		want    []string // name:text
		wantErr bool
	}{
		{"output and end", ": keep-alive\n\nevent: stdout\nid: 3,0\ndata: {\"text\":\"hi\\n\"}\n\nevent: stderr\nid: 3,2\ndata: {\"text\":\"e\"}\n\nevent: end\nid: 3,2\ndata: {\"status\":\"done\"}\n\n",
			[]string{"stdout:hi\n", "stderr:e", "end:"}, false},
		{"attempts", "event: attempt\nid: 0,0\ndata: {\"attempt\":2}\n\nevent: stdout\nid: 1,0\ndata: {\"text\":\"x\"}\n\nevent: end\ndata: {}\n\n",
			[]string{"attempt:", "stdout:x", "end:"}, false},
		{"broken off before the end", "event: stdout\ndata: {\"text\":\"x\"}\n\n", []string{"stdout:x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			err := readEvents(strings.NewReader(tt.stream), func(e Event) { got = append(got, e.Name+":"+e.Text()) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error: %v", err, tt.wantErr)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("events %q, want %q", got, tt.want)
			}
		})
	}
}
