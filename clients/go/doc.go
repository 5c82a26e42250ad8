// Package jobwire is a Go client for the Jobwire job-queue service's REST API.
//
// It uses only the standard library. A Client enqueues jobs (one or a batch), waits for
// them (Apply, GetJob with a long-poll wait), aborts and retries them, and reads queues;
// A Worker runs handlers on leased jobs (concurrency, lease renewal, abort through
// context cancellation, timeouts, graceful stop); Lease, Heartbeat, Renew, Complete, Fail
// and Settle let a Go program take and report jobs itself. PauseQueue, ResumeQueue,
// SetQueueSettings (concurrency and rate limits that hold across every worker) and
// RetryJobs, DeleteJobs, AbortJobs (by a JobFilter) are flow control for operators.
//
//	client, err := jobwire.New("http://127.0.0.1:8080", jobwire.WithToken(token), jobwire.WithQueue("emails"))
//	job, err := client.Enqueue(ctx, "send_email", map[string]any{"to": "a@example.com"},
//		&jobwire.JobOptions{Retries: 2, Timeout: 30 * time.Second})
//	done, err := client.GetJob(ctx, job.ID, time.Minute) // long-polls until it finishes
//
// Errors from the service are *Error values carrying its code and message; match them
// with errors.Is against ErrNotFound, ErrStaleLease, ErrInvalidState, ErrInvalidRequest,
// ErrUnauthenticated, ErrForbidden, ErrUnavailable... Idempotent calls are retried with
// backoff on 502/503/504 and dropped connections; a context that ends is the error
// (errors.Is(err, context.DeadlineExceeded)), even during a backoff.
package jobwire
