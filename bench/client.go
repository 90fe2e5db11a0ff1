package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// client talks to one server through the API with a bearer token, over keep-alive connections.
type client struct {
	base  string
	token string
	hc    *http.Client
}

func newClient(base, token string) *client {
	return &client{base: base, token: token, hc: &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, never a proxy from the environment
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			DisableCompression:  true,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout: 10 * time.Minute,
	}}
}

// closeIdle closes the idle keep-alive connections (before a server is stopped).
func (c *client) closeIdle() { c.hc.CloseIdleConnections() }

func (c *client) request(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.hc.Do(req)
}

// do sends a request and returns the status and the whole body.
func (c *client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// stream sends a GET and reads the body into w, returning the status and the byte count.
func (c *client) stream(ctx context.Context, path string, w io.Writer) (int, int64, error) {
	resp, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	return resp.StatusCode, n, err
}

// schedule starts a job; anything but 202 is an error (a 202 means the job is durable).
func (c *client) schedule(ctx context.Context, pipeline string, variables map[string]any) (string, error) {
	body := map[string]any{"pipeline": pipeline}
	if variables != nil {
		body["variables"] = variables
	}
	raw, _ := json.Marshal(body)
	st, resp, err := c.do(ctx, http.MethodPost, "/pipelines/schedule", raw)
	if err != nil {
		return "", fmt.Errorf("schedule %s: %w", pipeline, err)
	}
	if st != http.StatusAccepted {
		return "", fmt.Errorf("schedule %s: HTTP %d: %s", pipeline, st, truncate(resp, 200))
	}
	var r struct {
		JobID string `json:"jobId"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || r.JobID == "" {
		return "", fmt.Errorf("schedule %s: bad answer %s", pipeline, truncate(resp, 200))
	}
	return r.JobID, nil
}

type taskDetail struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

type jobDetail struct {
	ID        string       `json:"id"`
	Completed bool         `json:"completed"`
	Canceled  bool         `json:"canceled"`
	Errored   bool         `json:"errored"`
	LastError string       `json:"lastError"`
	Node      string       `json:"node"` // the node that ran it, in a cluster
	Tasks     []taskDetail `json:"tasks"`
}

func (d *jobDetail) finished() bool { return d.Completed || d.Canceled }

// failed tells whether the job did not succeed with every task done.
func (d *jobDetail) failed() bool {
	if d.Errored || d.Canceled {
		return true
	}
	for _, t := range d.Tasks {
		if t.Status != "done" {
			return true
		}
	}
	return false
}

func (c *client) detail(ctx context.Context, id string) (*jobDetail, error) {
	st, body, err := c.do(ctx, http.MethodGet, "/job/detail?id="+url.QueryEscape(id), nil)
	if err != nil {
		return nil, fmt.Errorf("detail %s: %w", id, err)
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("detail %s: HTTP %d: %s", id, st, truncate(body, 200))
	}
	var d jobDetail
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("detail %s: %w", id, err)
	}
	return &d, nil
}

// waitDone polls the job's detail (at once, then every poll) until it finished.
func (c *client) waitDone(ctx context.Context, id string, poll, timeout time.Duration) (*jobDetail, error) {
	deadline := time.Now().Add(timeout)
	for {
		d, err := c.detail(ctx, id)
		if err != nil {
			return nil, err
		}
		if d.finished() {
			return d, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("job %s not finished after %s", id, timeout)
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return nil, err
		}
	}
}

// waitAll waits until every job in ids finished, polling the oldest unfinished one (jobs of one
// pipeline finish roughly in order). It returns the number of failed jobs.
func (c *client) waitAll(ctx context.Context, ids []string, poll, timeout time.Duration) (failed int, err error) {
	deadline := time.Now().Add(timeout)
	for i := 0; i < len(ids); {
		d, err := c.detail(ctx, ids[i])
		if err != nil {
			return failed, err
		}
		if d.finished() {
			if d.failed() {
				failed++
			}
			i++
			continue
		}
		if time.Now().After(deadline) {
			return failed, fmt.Errorf("%d of %d jobs not finished after %s", len(ids)-i, len(ids), timeout)
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return failed, err
		}
	}
	return failed, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
