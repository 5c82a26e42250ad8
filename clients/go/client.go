package jobwire

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// jitter spreads retries: seeded from crypto/rand, so that processes started together do
// not retry at the same instants (math/rand's global source is unseeded before Go 1.20).
var jitter = struct {
	sync.Mutex
	*mathrand.Rand
}{Rand: mathrand.New(mathrand.NewSource(seed()))}

func seed() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return time.Now().UnixNano()
	}
	var n int64
	for _, x := range b {
		n = n<<8 | int64(x)
	}
	return n
}

// CallOption adjusts one call about a job.
type CallOption func(*callOptions)

type callOptions struct{ queue string }

// InQueue makes a call about a job look only in the named queue (by default the service
// finds the job in any queue).
func InQueue(name string) CallOption { return func(o *callOptions) { o.queue = name } }

func queryOf(options []CallOption) url.Values {
	var o callOptions
	for _, option := range options {
		option(&o)
	}
	if o.queue == "" {
		return nil
	}
	return url.Values{"queue": {o.queue}}
}

// longPollChunk is the longest wait sent in one long-poll; longer waits are several polls.
const longPollChunk = 60 * time.Second

// Client talks to a Jobwire service. It is safe for concurrent use.
type Client struct {
	base           string
	token          string
	queue          string
	http           *http.Client
	retries        int
	baseDelay      time.Duration
	maxDelay       time.Duration
	requestTimeout time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithToken sets the bearer token (default: the URL's password, else $JOBWIRE_TOKEN).
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithQueue sets the queue calls use (default "default"); see also ForQueue.
func WithQueue(name string) Option { return func(c *Client) { c.queue = name } }

// WithHTTPClient sets the HTTP client (default: a new one with keep-alive).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how often idempotent calls are retried on 502/503/504 and dropped
// connections (default 4), the first backoff (default 100 ms, doubled each retry and
// jittered into [d/2, d]) and the longest (default 2 s).
func WithRetries(retries int, baseDelay, maxDelay time.Duration) Option {
	return func(c *Client) { c.retries, c.baseDelay, c.maxDelay = retries, baseDelay, maxDelay }
}

// WithRequestTimeout bounds one request, on top of a long-poll's wait (default 30 s).
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.requestTimeout = d } }

// New returns a client of the service at baseURL ("" for $JOBWIRE_URL, else
// http://127.0.0.1:8080). A password in the URL (http://:TOKEN@host:8080) is the token.
func New(baseURL string, options ...Option) (*Client, error) {
	if baseURL == "" {
		baseURL = os.Getenv("JOBWIRE_URL")
	}
	if baseURL == "" {
		baseURL = "http://127.0.0.1:8080"
	}
	parsed, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("jobwire: bad URL %q: %w", baseURL, err)
	}
	if parsed.Scheme != "http" && parsed.Scheme != "https" {
		return nil, fmt.Errorf("jobwire: URL must be http(s)://host:port, got %q", baseURL)
	}
	c := &Client{
		queue:          "default",
		http:           &http.Client{},
		retries:        4,
		baseDelay:      100 * time.Millisecond,
		maxDelay:       2 * time.Second,
		requestTimeout: 30 * time.Second,
	}
	if password, ok := parsed.User.Password(); ok {
		c.token = password
	} else {
		c.token = os.Getenv("JOBWIRE_TOKEN")
	}
	parsed.User = nil
	c.base = strings.TrimRight(parsed.String(), "/")
	for _, option := range options {
		option(c)
	}
	return c, nil
}

// URL is the service's base URL, without credentials.
func (c *Client) URL() string { return c.base }

// QueueName is the queue this client's calls use.
func (c *Client) QueueName() string { return c.queue }

// ForQueue returns a client of the same service (sharing its connections) on another queue.
func (c *Client) ForQueue(name string) *Client {
	other := *c
	other.queue = name
	return &other
}

// Enqueue adds a job running function with kwargs (a map or a struct that marshals to a
// JSON object; nil for none). A live job with the same id or key is returned instead,
// with Duplicate set.
func (c *Client) Enqueue(ctx context.Context, function string, kwargs any, options *JobOptions) (*Job, error) {
	body := spec(function, kwargs, options).body()
	var job Job
	err := c.do(ctx, call{method: "POST", path: c.queuePath("/jobs"), body: body, idempotent: true}, &job)
	return jobOrNil(&job, err)
}

// EnqueueBatch adds many jobs in one round trip (at most 1000); the reply keeps their order.
func (c *Client) EnqueueBatch(ctx context.Context, jobs []JobSpec) ([]*Job, error) {
	bodies := make([]map[string]any, len(jobs))
	for i, s := range jobs {
		bodies[i] = s.body()
	}
	var reply struct {
		Jobs []*Job `json:"jobs"`
	}
	err := c.do(ctx, call{method: "POST", path: c.queuePath("/jobs/batch"),
		body: map[string]any{"jobs": bodies}, idempotent: true}, &reply)
	if err != nil {
		return nil, err
	}
	return reply.Jobs, nil
}

// Apply enqueues a job and waits for it to finish, at most wait (0: until it does, or
// until ctx ends). It returns the finished job, with a *JobFailedError when the job
// failed or was aborted, and a *WaitTimeoutError (errors.Is ErrWaitTimeout) when the
// wait ran out first.
func (c *Client) Apply(ctx context.Context, function string, kwargs any, options *JobOptions, wait time.Duration) (*Job, error) {
	deadline := deadlineOf(wait)
	body := spec(function, kwargs, options).body()
	chunk := chunkUntil(deadline)
	var job Job
	err := c.do(ctx, call{method: "POST", path: c.queuePath("/jobs/apply"), body: body,
		query: url.Values{"wait": {seconds(chunk)}}, idempotent: true, extra: chunk}, &job)
	if err != nil {
		return nil, err
	}
	done := &job
	if !done.Finished() {
		if done, err = c.waitFinished(ctx, job.ID, job.Queue, deadline); err != nil {
			return done, err
		}
	}
	switch {
	case !done.Finished():
		return done, &WaitTimeoutError{Job: done}
	case done.Status != StatusComplete:
		return done, &JobFailedError{Job: done}
	}
	return done, nil
}

// GetJob returns the job; with wait > 0 it long-polls until the job finishes or wait
// runs out, and returns the job either way. InQueue(name) looks in one queue only.
func (c *Client) GetJob(ctx context.Context, id string, wait time.Duration, options ...CallOption) (*Job, error) {
	query := queryOf(options)
	if wait > 0 {
		return c.waitFinished(ctx, id, query.Get("queue"), deadlineOf(wait))
	}
	var job Job
	err := c.do(ctx, call{method: "GET", path: jobPath(id, ""), query: query, idempotent: true}, &job)
	return jobOrNil(&job, err)
}

// Abort aborts a job: a queued one at once; an active one's worker hears at once when it
// streams over gRPC or works on the store, else at its next renewal.
// InQueue(name) looks in one queue only.
func (c *Client) Abort(ctx context.Context, id, reason string, options ...CallOption) (*Job, error) {
	if reason == "" {
		reason = "aborted"
	}
	var job Job
	err := c.do(ctx, call{method: "POST", path: jobPath(id, "/abort"), query: queryOf(options),
		body: map[string]any{"error": reason}, idempotent: true}, &job)
	return jobOrNil(&job, err)
}

// Retry queues a finished job again (ErrInvalidState if it is still live).
func (c *Client) Retry(ctx context.Context, id string, options ...CallOption) (*Job, error) {
	var job Job
	err := c.do(ctx, call{method: "POST", path: jobPath(id, "/retry"), query: queryOf(options)}, &job)
	return jobOrNil(&job, err)
}

// Delete deletes a job whatever its status (admin token).
func (c *Client) Delete(ctx context.Context, id string, options ...CallOption) error {
	return c.do(ctx, call{method: "DELETE", path: jobPath(id, ""), query: queryOf(options), idempotent: true}, nil)
}

// QueueInfo returns the queue's counts per status and the workers seen on it lately.
func (c *Client) QueueInfo(ctx context.Context) (*QueueInfo, error) {
	var info QueueInfo
	if err := c.do(ctx, call{method: "GET", path: c.queuePath(""), idempotent: true}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// ListQueues returns every queue with its counts per status.
func (c *Client) ListQueues(ctx context.Context) ([]QueueSummary, error) {
	var reply struct {
		Queues []QueueSummary `json:"queues"`
	}
	if err := c.do(ctx, call{method: "GET", path: "/v1/queues", idempotent: true}, &reply); err != nil {
		return nil, err
	}
	return reply.Queues, nil
}

// ListJobs returns a page of the queue's jobs.
func (c *Client) ListJobs(ctx context.Context, options ListJobsOptions) (*JobPage, error) {
	query := url.Values{}
	if options.Status != "" {
		query.Set("status", string(options.Status))
	}
	if options.Function != "" {
		query.Set("function", options.Function)
	}
	if options.KeyPrefix != "" {
		query.Set("key_prefix", options.KeyPrefix)
	}
	if options.Limit > 0 {
		query.Set("limit", strconv.Itoa(options.Limit))
	}
	if options.Cursor != "" {
		query.Set("cursor", options.Cursor)
	}
	var page struct {
		Jobs       []*Job  `json:"jobs"`
		NextCursor *string `json:"next_cursor"`
	}
	err := c.do(ctx, call{method: "GET", path: c.queuePath("/jobs"), query: query, idempotent: true}, &page)
	if err != nil {
		return nil, err
	}
	result := &JobPage{Jobs: page.Jobs}
	if page.NextCursor != nil {
		result.NextCursor = *page.NextCursor
	}
	return result, nil
}

// Lease takes up to Max jobs of the queue, each with its lease token, long-polling up
// to Wait when none is due.
func (c *Client) Lease(ctx context.Context, options LeaseOptions) ([]*Job, error) {
	count := options.Max
	if count <= 0 {
		count = 1
	}
	functions := options.Functions
	if functions == nil {
		functions = []string{}
	}
	body := map[string]any{"worker_id": options.WorkerID, "max": count,
		"wait": options.Wait.Seconds(), "functions": functions}
	if options.LeaseLength > 0 {
		body["lease_s"] = options.LeaseLength.Seconds()
	}
	var reply struct {
		Jobs []*Job `json:"jobs"`
	}
	err := c.do(ctx, call{method: "POST", path: c.queuePath("/leases"), body: body, extra: options.Wait}, &reply)
	if err != nil {
		return nil, err
	}
	return reply.Jobs, nil
}

// Heartbeat renews a leased job's lease and stores its progress (0..1, negative: none).
// It reports whether the job was aborted; ErrStaleLease if the lease was lost.
func (c *Client) Heartbeat(ctx context.Context, job *Job, progress float64) (aborted bool, err error) {
	body := map[string]any{"lease": job.Lease}
	if progress >= 0 {
		body["progress"] = progress
	}
	var reply struct {
		Aborted bool `json:"aborted"`
	}
	err = c.do(ctx, call{method: "POST", path: jobPath(job.ID, "/heartbeat"), body: body, idempotent: true}, &reply)
	return reply.Aborted, err
}

// Complete reports a leased job's success with its result (ErrStaleLease if the lease
// no longer owns the job).
func (c *Client) Complete(ctx context.Context, job *Job, result any) (*Job, error) {
	var after Job
	err := c.do(ctx, call{method: "POST", path: jobPath(job.ID, "/complete"),
		body: map[string]any{"lease": job.Lease, "result": result}}, &after)
	return jobOrNil(&after, err)
}

// Fail reports a leased job's failure; the service retries it if retryable and it has
// retries left.
func (c *Client) Fail(ctx context.Context, job *Job, failure ErrorInfo, retryable bool) (*Job, error) {
	if failure.Type == "" {
		failure.Type = "Error"
	}
	var after Job
	err := c.do(ctx, call{method: "POST", path: jobPath(job.ID, "/fail"),
		body: map[string]any{"lease": job.Lease, "error": failure, "retryable": retryable}}, &after)
	return jobOrNil(&after, err)
}

// waitFinished long-polls the job (in queue, when not "") until it finishes or deadline.
func (c *Client) waitFinished(ctx context.Context, id, queue string, deadline time.Time) (*Job, error) {
	for {
		chunk := chunkUntil(deadline)
		query := url.Values{"wait": {seconds(chunk)}}
		if queue != "" {
			query.Set("queue", queue)
		}
		var job Job
		err := c.do(ctx, call{method: "GET", path: jobPath(id, ""), idempotent: true, query: query, extra: chunk}, &job)
		if err != nil {
			return nil, err
		}
		if job.Finished() || !time.Now().Before(deadline) {
			return &job, nil
		}
	}
}

func (c *Client) queuePath(suffix string) string {
	return "/v1/queues/" + url.PathEscape(c.queue) + suffix
}

type call struct {
	method, path string
	query        url.Values
	body         any
	idempotent   bool
	extra        time.Duration // a long-poll's wait, on top of the request timeout
}

// do sends a call, retrying as the policy allows, and decodes the reply into out.
func (c *Client) do(ctx context.Context, req call, out any) error {
	var payload []byte
	if req.body != nil {
		var err error
		if payload, err = json.Marshal(req.body); err != nil {
			return fmt.Errorf("jobwire: encoding the request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		status, body, err := c.once(ctx, req, payload)
		retry := false
		switch {
		case err != nil:
			if ctx.Err() != nil { // the caller's context ended: that is the error
				return fmt.Errorf("jobwire: %s %s: %w", req.method, req.path, ctx.Err())
			}
			// A refused connection never reached the service: safe to resend anything.
			retry = req.idempotent || errors.Is(err, syscall.ECONNREFUSED)
		case status >= 300:
			retry = req.idempotent && (status == 502 || status == 503 || status == 504)
			err = errorFromResponse(status, body)
		default:
			if out == nil || len(body) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("jobwire: decoding the reply of %s %s: %w", req.method, req.path, err)
			}
			return nil
		}
		if !retry || attempt >= c.retries {
			return err
		}
		if sleepErr := sleep(ctx, c.backoff(attempt)); sleepErr != nil {
			// The context ended during the backoff: its error wins (errors.Is works),
			// the last transport error is kept in the message.
			return fmt.Errorf("jobwire: %s %s: %w (last error: %v)", req.method, req.path, sleepErr, err)
		}
	}
}

func (c *Client) once(ctx context.Context, req call, payload []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout+req.extra)
	defer cancel()
	target := c.base + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	request, err := http.NewRequestWithContext(ctx, req.method, target, body)
	if err != nil {
		return 0, nil, err
	}
	request.Header.Set("accept", "application/json")
	if payload != nil {
		request.Header.Set("content-type", "application/json")
	}
	if c.token != "" {
		request.Header.Set("authorization", "Bearer "+c.token)
	}
	response, err := c.http.Do(request)
	if err != nil {
		return 0, nil, &ConnectionError{Method: req.method, Path: req.path, Err: err}
	}
	defer response.Body.Close()
	data, err := io.ReadAll(response.Body)
	if err != nil {
		return 0, nil, &ConnectionError{Method: req.method, Path: req.path, Err: err}
	}
	return response.StatusCode, data, nil
}

func (c *Client) backoff(attempt int) time.Duration {
	delay := c.baseDelay << uint(attempt)
	if delay > c.maxDelay || delay <= 0 {
		delay = c.maxDelay
	}
	jitter.Lock()
	defer jitter.Unlock()
	return delay/2 + time.Duration(jitter.Int63n(int64(delay/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func spec(function string, kwargs any, options *JobOptions) JobSpec {
	s := JobSpec{Function: function, Kwargs: kwargs}
	if options != nil {
		s.JobOptions = *options
	}
	return s
}

func jobOrNil(job *Job, err error) (*Job, error) {
	if err != nil {
		return nil, err
	}
	return job, nil
}

func jobPath(id, suffix string) string {
	return "/v1/jobs/" + url.PathEscape(id) + suffix
}

// deadlineOf is now + wait, or a far future for wait <= 0 (then ctx bounds the wait).
func deadlineOf(wait time.Duration) time.Time {
	if wait <= 0 {
		return time.Now().Add(100 * 365 * 24 * time.Hour)
	}
	return time.Now().Add(wait)
}

// chunkUntil is the next long-poll's wait: what is left before deadline, at most a chunk.
func chunkUntil(deadline time.Time) time.Duration {
	left := time.Until(deadline)
	if left > longPollChunk {
		return longPollChunk
	}
	if left < 0 {
		return 0
	}
	return left
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("jobwire: no randomness for a job id: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// LeaseRef names a leased job by its id and the lease token of its current attempt.
type LeaseRef struct {
	JobID string `json:"job_id"`
	Lease string `json:"lease"`
}

// Renew renews many leases of the queue in one call; each comes back "active",
// "aborting" (stop the task and report it aborted) or "lost" (drop it: report nothing).
func (c *Client) Renew(ctx context.Context, refs []LeaseRef) ([]string, error) {
	var reply struct {
		States []string `json:"states"`
	}
	if refs == nil {
		refs = []LeaseRef{}
	}
	err := c.do(ctx, call{method: "POST", path: c.queuePath("/leases/renew"),
		body: map[string]any{"leases": refs}, idempotent: true}, &reply)
	return reply.States, err
}

// Outcome is how one attempt ended, for Settle: Status "complete", "failed", "aborted",
// or "queued" to run it again (after DelaySeconds). "queued" without an Error hands an
// unstarted job back: the store gives its attempt back.
type Outcome struct {
	LeaseRef
	Status       Status     `json:"status"`
	Function     string     `json:"function,omitempty"`
	Result       any        `json:"result,omitempty"`
	Error        *ErrorInfo `json:"error,omitempty"`
	DelaySeconds float64    `json:"delay_s,omitempty"`
	RunSeconds   *float64   `json:"run_s,omitempty"`
}

// Settle reports many outcomes of the queue in one call; false where a lease was stale
// (nothing changed).
func (c *Client) Settle(ctx context.Context, outcomes []Outcome) ([]bool, error) {
	var reply struct {
		Settled []bool `json:"settled"`
	}
	err := c.do(ctx, call{method: "POST", path: c.queuePath("/leases/settle"),
		body: map[string]any{"outcomes": outcomes}}, &reply)
	return reply.Settled, err
}
