package jobwire

import (
	"context"
	"encoding/json"
	"math"
	"time"
)

// Flow control: pause a queue, set its limits, retry, delete or abort jobs in bulk.

// Rate is at most Limit jobs started in any window of PeriodSeconds (a sliding window:
// no burst beyond Limit at any moment).
type Rate struct {
	Limit int `json:"limit"`
	// PeriodSeconds is the window, > 0 and <= 86400 (0: the service's default, 1 s).
	PeriodSeconds float64 `json:"period_s,omitempty"`
}

// FunctionLimits are limits on the jobs of one function, across every worker.
type FunctionLimits struct {
	// MaxActive is how many of the function's jobs may be active at once (0: no limit).
	MaxActive int `json:"max_active,omitempty"`
	// Rate is how many of them may start per window (nil: no limit).
	Rate *Rate `json:"rate,omitempty"`
}

// QueueSettings are a queue's limits, across every worker of every language: the store
// enforces them where jobs are leased. A zero or nil limit is no limit; limits are
// 1..1,000,000,000.
type QueueSettings struct {
	// MaxActive is how many of the queue's jobs may be active at once.
	MaxActive int `json:"max_active,omitempty"`
	// MaxActivePerKey is how many jobs may be active at once per ConcurrencyKey (jobs
	// without a key are not counted).
	MaxActivePerKey int `json:"max_active_per_key,omitempty"`
	// Rate is how many of the queue's jobs may start per window.
	Rate *Rate `json:"rate,omitempty"`
	// RatePerKey is how many jobs may start per window per ConcurrencyKey.
	RatePerKey *Rate `json:"rate_per_key,omitempty"`
	// Functions holds limits per function name.
	Functions map[string]FunctionLimits `json:"functions,omitempty"`
}

// UnmarshalJSON reads settings as the service sends them; no function limits decode as a
// nil map, so that settings without limits equal QueueSettings{}.
func (s *QueueSettings) UnmarshalJSON(data []byte) error {
	type plain QueueSettings // without this method
	var decoded plain
	if err := json.Unmarshal(data, &decoded); err != nil {
		return err
	}
	if len(decoded.Functions) == 0 {
		decoded.Functions = nil
	}
	*s = QueueSettings(decoded)
	return nil
}

// QueueState is a queue's limits and whether it is paused.
type QueueState struct {
	Queue    string        `json:"queue"`
	Paused   bool          `json:"paused"`
	Settings QueueSettings `json:"settings"`
}

// JobFilter selects the jobs of a queue a bulk call takes; each zero field matches every
// job, so JobFilter{} takes them all.
type JobFilter struct {
	// Status takes only jobs in this status.
	Status Status
	// Function takes only jobs of this function.
	Function string
	// KeyPrefix takes only jobs whose deduplication key starts with this.
	KeyPrefix string
	// EnqueuedBefore takes only jobs created before this time.
	EnqueuedBefore time.Time
	// EnqueuedAfter takes only jobs created at or after this time.
	EnqueuedAfter time.Time
}

func (f JobFilter) body() map[string]any {
	body := map[string]any{}
	if f.Status != "" {
		body["status"] = f.Status
	}
	if f.Function != "" {
		body["function"] = f.Function
	}
	if f.KeyPrefix != "" {
		body["key_prefix"] = f.KeyPrefix
	}
	if !f.EnqueuedBefore.IsZero() {
		body["enqueued_before"] = unixSeconds(f.EnqueuedBefore)
	}
	if !f.EnqueuedAfter.IsZero() {
		body["enqueued_after"] = unixSeconds(f.EnqueuedAfter)
	}
	return body
}

func unixSeconds(t time.Time) float64 {
	return math.Max(float64(t.UnixNano())/1e9, 0)
}

// PauseQueue stops the leasing of the queue's jobs, for every worker (running jobs
// finish; enqueue still works). The state is stored. Admin token.
func (c *Client) PauseQueue(ctx context.Context) error {
	return c.do(ctx, call{method: "POST", path: c.queuePath("/pause"), idempotent: true}, nil)
}

// ResumeQueue lets the queue's jobs be leased again. Admin token.
func (c *Client) ResumeQueue(ctx context.Context) error {
	return c.do(ctx, call{method: "POST", path: c.queuePath("/resume"), idempotent: true}, nil)
}

// QueueSettings returns the queue's limits and whether it is paused.
func (c *Client) QueueSettings(ctx context.Context) (*QueueState, error) {
	var state QueueState
	err := c.do(ctx, call{method: "GET", path: c.queuePath("/settings"), idempotent: true}, &state)
	if err != nil {
		return nil, err
	}
	return &state, nil
}

// SetQueueSettings replaces the queue's limits (QueueSettings{} removes them all) and
// returns what is stored. A limit out of range is ErrInvalidRequest, its message naming
// the field. Admin token.
func (c *Client) SetQueueSettings(ctx context.Context, settings QueueSettings) (*QueueState, error) {
	var state QueueState
	err := c.do(ctx, call{method: "PUT", path: c.queuePath("/settings"), body: settings,
		idempotent: true}, &state)
	if err != nil {
		return nil, err
	}
	return &state, nil
}

// RetryJobs queues again every finished job the filter matches (live ones are skipped)
// and returns how many.
func (c *Client) RetryJobs(ctx context.Context, filter JobFilter) (int, error) {
	return c.bulk(ctx, "retry", filter, false) // a resend could retry a job twice
}

// DeleteJobs deletes every job the filter matches, whatever its status, and returns how
// many. Admin token.
func (c *Client) DeleteJobs(ctx context.Context, filter JobFilter) (int, error) {
	return c.bulk(ctx, "delete", filter, true)
}

// AbortJobs aborts every live job the filter matches (queued ones at once, active ones
// when their worker hears, as for Abort) and returns how many.
func (c *Client) AbortJobs(ctx context.Context, filter JobFilter) (int, error) {
	return c.bulk(ctx, "abort", filter, true)
}

func (c *Client) bulk(ctx context.Context, action string, filter JobFilter, idempotent bool) (int, error) {
	var reply struct {
		Count int `json:"count"`
	}
	err := c.do(ctx, call{method: "POST", path: c.queuePath("/jobs/" + action), body: filter.body(),
		idempotent: idempotent}, &reply)
	return reply.Count, err
}
