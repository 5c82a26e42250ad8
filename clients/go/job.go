package jobwire

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Status is where a job is in its lifecycle.
type Status string

// The statuses of a job.
const (
	StatusQueued    Status = "queued"
	StatusScheduled Status = "scheduled"
	StatusActive    Status = "active"
	StatusAborting  Status = "aborting"
	StatusAborted   Status = "aborted"
	StatusFailed    Status = "failed"
	StatusComplete  Status = "complete"
)

// Finished reports whether the status is final: complete, failed or aborted.
func (s Status) Finished() bool {
	return s == StatusComplete || s == StatusFailed || s == StatusAborted
}

// ErrorInfo says why a job failed or was aborted.
type ErrorInfo struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

// Backoff is a job's retry backoff: off, on (the delay doubles each retry, jittered
// into [d/2, d]), or on with a cap in seconds. On the wire it is false, true or a number.
type Backoff struct {
	Enabled bool
	// CapSeconds caps the delay when > 0 (only with Enabled).
	CapSeconds float64
}

// MarshalJSON writes false, true or the cap.
func (b Backoff) MarshalJSON() ([]byte, error) {
	if b.Enabled && b.CapSeconds > 0 {
		return json.Marshal(b.CapSeconds)
	}
	return json.Marshal(b.Enabled)
}

// UnmarshalJSON reads false, true or a number.
func (b *Backoff) UnmarshalJSON(data []byte) error {
	var flag bool
	if err := json.Unmarshal(data, &flag); err == nil {
		*b = Backoff{Enabled: flag}
		return nil
	}
	var limit float64
	if err := json.Unmarshal(data, &limit); err != nil {
		return fmt.Errorf("jobwire: retry_backoff must be a bool or a number, got %s", data)
	}
	*b = Backoff{Enabled: limit > 0, CapSeconds: limit}
	return nil
}

// Job is a job as the service returns it. Times are Unix seconds (0: not yet); durations
// are seconds, as on the wire.
type Job struct {
	ID       string         `json:"id"`
	Function string         `json:"function"`
	Kwargs   map[string]any `json:"kwargs"`
	Queue    string         `json:"queue"`
	Key      *string        `json:"key"`
	// ConcurrencyKey groups jobs for the queue's per-key limits.
	ConcurrencyKey *string         `json:"concurrency_key"`
	Status         Status          `json:"status"`
	Priority       int             `json:"priority"`
	Timeout        *float64        `json:"timeout"`
	Heartbeat      float64         `json:"heartbeat"`
	Retries        int             `json:"retries"`
	Attempts       int             `json:"attempts"`
	TTL            int             `json:"ttl"`
	Scheduled      float64         `json:"scheduled"`
	RetryDelay     float64         `json:"retry_delay"`
	RetryBackoff   Backoff         `json:"retry_backoff"`
	Progress       float64         `json:"progress"`
	Meta           map[string]any  `json:"meta"`
	Result         json.RawMessage `json:"result"`
	Error          *ErrorInfo      `json:"error"`
	Created        float64         `json:"created"`
	Queued         float64         `json:"queued"`
	Started        float64         `json:"started"`
	Completed      float64         `json:"completed"`
	Touched        float64         `json:"touched"`
	Worker         *string         `json:"worker"`
	// Duplicate is set on enqueue replies: a live job with this id or key already existed.
	Duplicate bool `json:"duplicate,omitempty"`
	// Lease is the token of the current attempt, on jobs returned by Lease.
	Lease string `json:"lease,omitempty"`
}

// Finished reports whether the job reached complete, failed or aborted.
func (j *Job) Finished() bool { return j.Status.Finished() }

// DecodeResult unmarshals the job's result into v.
func (j *Job) DecodeResult(v any) error {
	if len(j.Result) == 0 {
		return json.Unmarshal([]byte("null"), v)
	}
	return json.Unmarshal(j.Result, v)
}

// JobOptions are a job's options, as the Python SDK's enqueue takes them. The zero value
// of each takes the service's default.
type JobOptions struct {
	// ID is the job id; the client generates one when empty, so that a retried request
	// dedupes instead of enqueueing twice.
	ID string
	// Key deduplicates: while a job with this key is queued, scheduled or active, another
	// enqueue returns it (Duplicate set) instead.
	Key string
	// ConcurrencyKey groups jobs for the queue's per-key limits (a tenant id, say):
	// QueueSettings.MaxActivePerKey and RatePerKey hold for each key apart.
	ConcurrencyKey string
	// Timeout cancels the task after this long (0: no limit).
	Timeout time.Duration
	// Retries after the first attempt.
	Retries int
	// TTL is how many seconds the finished job stays readable: nil for the service's
	// default (600), 0 forever, -1 deleted at once. See Seconds.
	TTL *int
	// Heartbeat is the lease length: a job whose worker is silent that long is retried
	// or failed (0: the service's default, 30 s).
	Heartbeat time.Duration
	// Scheduled is when the job may start (zero: now).
	Scheduled time.Time
	// RetryDelay is the delay before a retry.
	RetryDelay time.Duration
	// RetryBackoff doubles the delay at each retry.
	RetryBackoff Backoff
	// Priority: higher runs first, -1000..1000.
	Priority int
}

// Seconds returns a pointer to n, for JobOptions.TTL.
func Seconds(n int) *int { return &n }

// JobSpec is one job of a batch.
type JobSpec struct {
	Function string
	// Kwargs are the function's keyword arguments: a map or a struct that marshals to a
	// JSON object (nil: none).
	Kwargs any
	JobOptions
}

func (s JobSpec) body() map[string]any {
	kwargs := s.Kwargs
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	id := s.ID
	if id == "" {
		id = newID()
	}
	body := map[string]any{"function": s.Function, "kwargs": kwargs, "id": id}
	if s.Key != "" {
		body["key"] = s.Key
	}
	if s.ConcurrencyKey != "" {
		body["concurrency_key"] = s.ConcurrencyKey
	}
	if s.Timeout > 0 {
		body["timeout"] = s.Timeout.Seconds()
	}
	if s.Retries != 0 {
		body["retries"] = s.Retries
	}
	if s.TTL != nil {
		body["ttl"] = *s.TTL
	}
	if s.Heartbeat > 0 {
		body["heartbeat"] = s.Heartbeat.Seconds()
	}
	if !s.Scheduled.IsZero() {
		body["scheduled"] = math.Max(float64(s.Scheduled.UnixNano())/1e9, 0)
	}
	if s.RetryDelay > 0 {
		body["retry_delay"] = s.RetryDelay.Seconds()
	}
	if s.RetryBackoff.Enabled {
		body["retry_backoff"] = s.RetryBackoff
	}
	if s.Priority != 0 {
		body["priority"] = s.Priority
	}
	return body
}

// QueueInfo is a queue's counts per status and the workers seen on it in the last minute.
type QueueInfo struct {
	Name      string           `json:"name"`
	Counts    map[Status]int   `json:"counts"`
	Scheduled int              `json:"scheduled"`
	Workers   []map[string]any `json:"workers"`
	// FinishedPerS is jobs finished per second over the last five minutes.
	FinishedPerS float64 `json:"finished_per_s"`
	// Paused is true while no job of the queue is leased.
	Paused bool `json:"paused"`
	// Settings are the queue's limits.
	Settings QueueSettings `json:"settings"`
}

// QueueSummary is one queue of ListQueues.
type QueueSummary struct {
	Name   string         `json:"name"`
	Counts map[Status]int `json:"counts"`
}

// ListJobsOptions selects a page of ListJobs.
type ListJobsOptions struct {
	Status   Status
	Function string
	// KeyPrefix lists only jobs whose deduplication key starts with this.
	KeyPrefix string
	// Limit is the page size, 1..1000 (0: the service's default, 100).
	Limit int
	// Cursor is the previous page's NextCursor.
	Cursor string
}

// JobPage is one page of ListJobs.
type JobPage struct {
	Jobs []*Job `json:"jobs"`
	// NextCursor is the cursor of the next page, empty on the last one.
	NextCursor string `json:"next_cursor"`
}

// LeaseOptions asks for jobs.
type LeaseOptions struct {
	WorkerID string
	// Max is the most jobs to take (0: 1).
	Max int
	// Wait long-polls this long when nothing is due.
	Wait time.Duration
	// Functions are recorded as worker info.
	Functions []string
	// LeaseLength is the lease of jobs without their own heartbeat (0: service default).
	LeaseLength time.Duration
}
