// Package client is a small typed HTTP client of the prunner API, for the operator commands of
// the prunner binary (prunner jobs, cancel, schedule, logs).
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one prunner server with one token.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the server at address: host:port (as the server's --address) or a
// URL with scheme and optional base path. token is sent as a Bearer token.
func New(address, token string) (*Client, error) {
	base, err := BaseURL(address)
	if err != nil {
		return nil, err
	}
	return &Client{base: base, token: token, http: &http.Client{}}, nil
}

// BaseURL turns the server's listen address into the URL the API is under. A listen address
// without a host (":9009") or with an unspecified one ("0.0.0.0:9009") is reached on localhost.
func BaseURL(address string) (*url.URL, error) {
	if address == "" {
		return nil, errors.New("no server address")
	}
	if !strings.Contains(address, "://") {
		host, port, ok := strings.Cut(address, ":")
		if !ok || port == "" {
			return nil, fmt.Errorf("address %q: want host:port or a URL", address)
		}
		if host == "" || host == "0.0.0.0" || host == "[::]" {
			host = "localhost"
		}
		address = "http://" + host + ":" + port
	}
	u, err := url.Parse(address)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("address %q: want host:port or a URL", address)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// APIError is an answer of the server with a status of 400 or more; Message is the API's error
// text.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Task is a task of a job as the API describes it.
type Task struct {
	Name     string     `json:"name"`
	Status   string     `json:"status"`
	Start    *time.Time `json:"start"`
	End      *time.Time `json:"end"`
	ExitCode int        `json:"exitCode"`
	Error    string     `json:"error,omitempty"`
}

// Job is a job as the API describes it (the fields the commands use).
type Job struct {
	ID        string     `json:"id"`
	Pipeline  string     `json:"pipeline"`
	Tasks     []Task     `json:"tasks"`
	Completed bool       `json:"completed"`
	Canceled  bool       `json:"canceled"`
	Errored   bool       `json:"errored"`
	Created   time.Time  `json:"created"`
	Start     *time.Time `json:"start"`
	End       *time.Time `json:"end"`
	LastError string     `json:"lastError,omitempty"`
	Status    string     `json:"status"`
}

// Ended tells whether the job will not change any more.
func (j *Job) Ended() bool {
	switch j.Status {
	case "succeeded", "failed", "canceled", "replaced":
		return true
	}
	return false
}

// JobQuery selects jobs of GET /jobs; zero values are left out.
type JobQuery struct {
	Pipeline string
	Status   string // comma-separated statuses
	Limit    int
}

// JobList is a page of jobs, newest first, and the body it was read from.
type JobList struct {
	Jobs       []Job  `json:"jobs"`
	NextCursor string `json:"nextCursor,omitempty"`
	Raw        []byte `json:"-"`
}

// Jobs lists jobs.
func (c *Client) Jobs(ctx context.Context, q JobQuery) (*JobList, error) {
	v := url.Values{}
	if q.Pipeline != "" {
		v.Set("pipeline", q.Pipeline)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var list JobList
	raw, err := c.call(ctx, http.MethodGet, "/jobs", v, nil, &list)
	if err != nil {
		return nil, err
	}
	list.Raw = raw
	return &list, nil
}

// Node is a node of a cluster as GET /nodes describes it.
type Node struct {
	ID              string    `json:"id"`
	Address         string    `json:"address"`
	Version         string    `json:"version"`
	DefinitionsHash string    `json:"definitionsHash"`
	State           string    `json:"state"`
	Epoch           int64     `json:"epoch"`
	Started         time.Time `json:"started"`
	Heartbeat       time.Time `json:"heartbeat"`
	LeaseUntil      time.Time `json:"leaseUntil"`
	RunningJobs     int       `json:"runningJobs"`
	MaxJobs         int       `json:"maxJobs"`
}

// NodeList is the cluster's nodes, sorted by ID (none for a server that is no node of a
// cluster), and the body it was read from.
type NodeList struct {
	Nodes []Node `json:"nodes"`
	Raw   []byte `json:"-"`
}

// Nodes lists the nodes of the server's cluster.
func (c *Client) Nodes(ctx context.Context) (*NodeList, error) {
	var list NodeList
	raw, err := c.call(ctx, http.MethodGet, "/nodes", nil, nil, &list)
	if err != nil {
		return nil, err
	}
	list.Raw = raw
	return &list, nil
}

// Job returns a job's detail.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	if _, err := c.call(ctx, http.MethodGet, "/job/detail", url.Values{"id": {id}}, nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Cancel cancels a job.
func (c *Client) Cancel(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodPost, "/job/cancel", url.Values{"id": {id}}, nil, nil)
	return err
}

// ScheduleRequest is the body of POST /pipelines/schedule.
type ScheduleRequest struct {
	Pipeline       string         `json:"pipeline"`
	Variables      map[string]any `json:"variables,omitempty"`
	QueuePartition string         `json:"queuePartition,omitempty"`
}

// Schedule schedules a job and returns its ID.
func (c *Client) Schedule(ctx context.Context, req ScheduleRequest) (string, error) {
	var answer struct {
		JobID string `json:"jobId"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/pipelines/schedule", nil, req, &answer); err != nil {
		return "", err
	}
	return answer.JobID, nil
}

// Logs is a task's output so far.
type Logs struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// Logs returns a task's output.
func (c *Client) Logs(ctx context.Context, id, task string) (*Logs, error) {
	var l Logs
	if _, err := c.call(ctx, http.MethodGet, "/job/logs", url.Values{"id": {id}, "task": {task}}, nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Event is one event of a live log stream: Name is stdout, stderr, attempt, end or error; Data
// its JSON.
type Event struct {
	Name string
	Data json.RawMessage
}

// Text is the text of a stdout or stderr event.
func (e Event) Text() string {
	var d struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.Text
}

// Follow streams a task's output live (GET /job/logs/live) and calls fn for each event until the
// stream ends (after the end event, when the task has ended) or ctx is done.
func (c *Client) Follow(ctx context.Context, id, task string, fn func(Event)) error {
	resp, err := c.do(ctx, http.MethodGet, "/job/logs/live", url.Values{"id": {id}, "task": {task}}, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readEvents(resp.Body, fn)
}

// readEvents parses Server-Sent Events: lines "event:" and "data:" up to an empty line; comment
// lines and ids are skipped (the client reads one stream from its start).
func readEvents(r io.Reader, fn func(Event)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var ev Event
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" || data.Len() > 0 {
				ev.Data = append(json.RawMessage(nil), data.Bytes()...)
				fn(ev)
				if ev.Name == "end" {
					return nil
				}
			}
			ev, data = Event{}, bytes.Buffer{}
		case strings.HasPrefix(line, "event:"):
			ev.Name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// call sends a request and decodes a JSON answer into out (when not nil); it returns the body.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) ([]byte, error) {
	resp, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return raw, nil
}

// do sends a request and returns a response with a status below 400; any other status is an
// *APIError with the API's message.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), reader)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, apiError(resp)
	}
	return resp, nil
}

// apiError reads the {"error": "…"} of a failed request; a body of another form is shown as it
// is, so that a proxy's error page is not hidden.
func apiError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		msg = resp.Status
	}
	return &APIError{Status: resp.StatusCode, Message: msg}
}
