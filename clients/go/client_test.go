package jobwire_test

// These tests run against a real `jobwire serve` at $JOBWIRE_URL with the admin token in
// $JOBWIRE_TOKEN (tests/clients/test_go.py starts one); without JOBWIRE_URL they skip.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"testing"
	"time"

	jobwire "github.com/jobwire/jobwire/clients/go"
)

func serviceURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("JOBWIRE_URL")
	if u == "" {
		t.Skip("JOBWIRE_URL is not set: no service to test against")
	}
	return u
}

func uniqueQueue(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "go-" + hex.EncodeToString(b[:])
}

func newClient(t *testing.T, options ...jobwire.Option) *jobwire.Client {
	t.Helper()
	u := serviceURL(t)
	options = append([]jobwire.Option{jobwire.WithQueue(uniqueQueue(t))}, options...)
	client, err := jobwire.New(u, options...)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// must(f())(t) is f's value, failing the test if f returned an error.
func must[T any](value T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return value
	}
}

// lease takes the queue's next job, waiting up to 5 s for one.
func lease(ctx context.Context, client *jobwire.Client) (*jobwire.Job, error) {
	jobs, err := client.Lease(ctx, jobwire.LeaseOptions{WorkerID: "go-test", Wait: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	if len(jobs) != 1 || jobs[0].Lease == "" {
		return nil, fmt.Errorf("leased %d jobs: %+v", len(jobs), jobs)
	}
	return jobs[0], nil
}

// leaseOne is lease, failing the test on an error (only from the test's goroutine).
func leaseOne(ctx context.Context, t *testing.T, client *jobwire.Client) *jobwire.Job {
	t.Helper()
	leased, err := lease(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	return leased
}

func TestEnqueueMapsEveryOption(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	scheduled := time.Now().Add(time.Hour).Truncate(time.Second)
	job := must(client.Enqueue(ctx, "send_email", map[string]any{"to": "a@example.com"}, &jobwire.JobOptions{
		Timeout:      5 * time.Second,
		Retries:      2,
		TTL:          jobwire.Seconds(30),
		Heartbeat:    7 * time.Second,
		Scheduled:    scheduled,
		RetryDelay:   1500 * time.Millisecond,
		RetryBackoff: jobwire.Backoff{Enabled: true, CapSeconds: 10},
		Priority:     9,
	}))(t)
	if len(job.ID) != 32 || job.Duplicate {
		t.Fatalf("id %q duplicate %v", job.ID, job.Duplicate)
	}
	stored := must(client.GetJob(ctx, job.ID, 0))(t)
	for _, j := range []*jobwire.Job{job, stored} {
		if j.Function != "send_email" || j.Kwargs["to"] != "a@example.com" || j.Queue != client.QueueName() {
			t.Errorf("function/kwargs/queue: %+v", j)
		}
		if j.Status != jobwire.StatusScheduled || j.Scheduled != float64(scheduled.Unix()) {
			t.Errorf("status %s scheduled %v, want scheduled at %d", j.Status, j.Scheduled, scheduled.Unix())
		}
		if j.Timeout == nil || *j.Timeout != 5 || j.Retries != 2 || j.TTL != 30 || j.Heartbeat != 7 {
			t.Errorf("timeout/retries/ttl/heartbeat: %v %d %d %v", j.Timeout, j.Retries, j.TTL, j.Heartbeat)
		}
		if j.RetryDelay != 1.5 || j.RetryBackoff != (jobwire.Backoff{Enabled: true, CapSeconds: 10}) || j.Priority != 9 {
			t.Errorf("retry delay/backoff/priority: %v %+v %d", j.RetryDelay, j.RetryBackoff, j.Priority)
		}
	}
	plain := must(client.Enqueue(ctx, "noop", nil, nil))(t)
	if plain.Status != jobwire.StatusQueued || plain.Timeout != nil || plain.TTL != 600 || plain.RetryBackoff.Enabled {
		t.Errorf("defaults: %+v", plain)
	}
}

func TestEnqueueDedupesByKeyAndID(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	first := must(client.Enqueue(ctx, "f", map[string]int{"i": 1}, &jobwire.JobOptions{Key: "k1"}))(t)
	second := must(client.Enqueue(ctx, "f", map[string]int{"i": 2}, &jobwire.JobOptions{Key: "k1"}))(t)
	if first.Duplicate || !second.Duplicate || second.ID != first.ID {
		t.Fatalf("first %s dup=%v, second %s dup=%v", first.ID, first.Duplicate, second.ID, second.Duplicate)
	}
	withID := must(client.Enqueue(ctx, "f", nil, &jobwire.JobOptions{ID: "go-fixed-" + client.QueueName()}))(t)
	again := must(client.Enqueue(ctx, "f", nil, &jobwire.JobOptions{ID: withID.ID}))(t)
	if withID.ID != "go-fixed-"+client.QueueName() || !again.Duplicate {
		t.Fatalf("explicit id: %s, resend duplicate=%v", withID.ID, again.Duplicate)
	}
}

func TestEnqueueBatchKeepsOrder(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	type args struct {
		N int `json:"n"`
	}
	jobs := must(client.EnqueueBatch(ctx, []jobwire.JobSpec{
		{Function: "a", Kwargs: args{N: 1}, JobOptions: jobwire.JobOptions{Key: "same"}},
		{Function: "b", JobOptions: jobwire.JobOptions{Priority: 3}},
		{Function: "c", JobOptions: jobwire.JobOptions{Key: "same"}},
	}))(t)
	if len(jobs) != 3 || jobs[0].Function != "a" || jobs[1].Function != "b" || jobs[1].Priority != 3 {
		t.Fatalf("batch: %+v", jobs)
	}
	if jobs[0].Kwargs["n"] != float64(1) || jobs[2].ID != jobs[0].ID || !jobs[2].Duplicate {
		t.Fatalf("kwargs or duplicate: %+v %+v", jobs[0], jobs[2])
	}
}

func TestErrorsAreTyped(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	_, err := client.GetJob(ctx, "no-such-job", 0)
	var apiErr *jobwire.Error
	if !errors.Is(err, jobwire.ErrNotFound) || !errors.As(err, &apiErr) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if apiErr.Status != 404 || apiErr.Code != "not_found" || apiErr.Message == "" {
		t.Fatalf("error fields: %+v", apiErr)
	}
	_, err = client.Enqueue(ctx, "f", nil, &jobwire.JobOptions{Priority: 5000})
	if !errors.Is(err, jobwire.ErrInvalidRequest) || errors.Is(err, jobwire.ErrNotFound) {
		t.Fatalf("want ErrInvalidRequest, got %v", err)
	}
	if errors.As(err, &apiErr); apiErr.Status != 400 || len(apiErr.Details) == 0 {
		t.Fatalf("validation error: %+v", apiErr)
	}
}

func TestAbortRetryDelete(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	job := must(client.Enqueue(ctx, "f", nil, nil))(t)
	aborted := must(client.Abort(ctx, job.ID, "changed my mind"))(t)
	if aborted.Status != jobwire.StatusAborted || aborted.Error == nil || aborted.Error.Message != "changed my mind" {
		t.Fatalf("aborted: %+v", aborted)
	}
	retried := must(client.Retry(ctx, job.ID))(t)
	if retried.Status != jobwire.StatusQueued {
		t.Fatalf("retried: %s", retried.Status)
	}
	if _, err := client.Retry(ctx, job.ID); !errors.Is(err, jobwire.ErrInvalidState) {
		t.Fatalf("retrying a live job: want ErrInvalidState, got %v", err)
	}
	if err := client.Delete(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetJob(ctx, job.ID, 0); !errors.Is(err, jobwire.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestGetJobWaits(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	job := must(client.Enqueue(ctx, "f", nil, nil))(t)
	started := time.Now()
	same := must(client.GetJob(ctx, job.ID, 500*time.Millisecond))(t)
	if same.Status != jobwire.StatusQueued || time.Since(started) < 400*time.Millisecond {
		t.Fatalf("wait returned %s after %v", same.Status, time.Since(started))
	}
	worked := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		leased, err := lease(ctx, client)
		if err == nil {
			_, err = client.Complete(ctx, leased, map[string]any{"ok": true})
		}
		worked <- err
	}()
	done, err := client.GetJob(ctx, job.ID, 20*time.Second)
	if workErr := <-worked; workErr != nil || err != nil {
		t.Fatalf("worker: %v, wait: %v", workErr, err)
	}
	var result map[string]bool
	if err := done.DecodeResult(&result); err != nil || done.Status != jobwire.StatusComplete || !result["ok"] {
		t.Fatalf("done: %s %s %v", done.Status, done.Result, err)
	}
}

func TestGetJobFollowsTheContext(t *testing.T) {
	client := newClient(t)
	job := must(client.Enqueue(testContext(t), "f", nil, nil))(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, err := client.GetJob(ctx, job.ID, 20*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(started) > 3*time.Second {
		t.Fatalf("want DeadlineExceeded soon, got %v after %v", err, time.Since(started))
	}
}

func TestApply(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	// A worker of one job, in another goroutine; its error comes back on the channel.
	worker := func(fail bool, times int) <-chan error {
		errs := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < times && err == nil; i++ {
				var leased *jobwire.Job
				if leased, err = lease(ctx, client); err != nil {
					break
				}
				if fail {
					_, err = client.Fail(ctx, leased, jobwire.ErrorInfo{Type: "ValueError", Message: "bad"}, true)
				} else {
					a, _ := leased.Kwargs["a"].(float64)
					b, _ := leased.Kwargs["b"].(float64)
					_, err = client.Complete(ctx, leased, a+b)
				}
			}
			errs <- err
		}()
		return errs
	}
	adder := worker(false, 1)
	done, err := client.Apply(ctx, "add", map[string]int{"a": 2, "b": 3}, nil, 20*time.Second)
	var sum int
	if workErr := <-adder; workErr != nil || err != nil || done.DecodeResult(&sum) != nil || sum != 5 {
		t.Fatalf("apply: %v %+v (worker: %v)", err, done, workErr)
	}
	failer := worker(true, 2)
	failed, err := client.Apply(ctx, "add", nil, &jobwire.JobOptions{Retries: 1}, 20*time.Second)
	if workErr := <-failer; workErr != nil {
		t.Fatalf("worker: %v", workErr)
	}
	var jobErr *jobwire.JobFailedError
	if !errors.As(err, &jobErr) || jobErr.Job != failed || failed.Status != jobwire.StatusFailed {
		t.Fatalf("want JobFailedError, got %v", err)
	}
	if failed.Attempts != 2 || failed.Error == nil || failed.Error.Type != "ValueError" || failed.Error.Message != "bad" {
		t.Fatalf("failed job: attempts %d error %+v", failed.Attempts, failed.Error)
	}
	pending, err := client.Apply(ctx, "nobody_runs_this", nil, nil, 300*time.Millisecond)
	if !errors.Is(err, jobwire.ErrWaitTimeout) || pending == nil || pending.Status != jobwire.StatusQueued {
		t.Fatalf("want ErrWaitTimeout with the queued job, got %v %+v", err, pending)
	}
}

func TestWorkerCallsAndStaleLease(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	job := must(client.Enqueue(ctx, "f", nil, nil))(t)
	leased := leaseOne(ctx, t, client)
	if leased.ID != job.ID || leased.Status != jobwire.StatusActive || leased.Attempts != 1 {
		t.Fatalf("leased: %+v", leased)
	}
	if aborted, err := client.Heartbeat(ctx, leased, 0.5); err != nil || aborted {
		t.Fatalf("heartbeat: %v %v", aborted, err)
	}
	if got := must(client.GetJob(ctx, job.ID, 0))(t); got.Progress != 0.5 {
		t.Fatalf("progress %v", got.Progress)
	}
	stale := *leased
	stale.Lease = "not-the-lease"
	_, err := client.Complete(ctx, &stale, 1)
	var apiErr *jobwire.Error
	if !errors.Is(err, jobwire.ErrStaleLease) || !errors.As(err, &apiErr) || apiErr.Status != 409 {
		t.Fatalf("want ErrStaleLease (409), got %v", err)
	}
	must(client.Abort(ctx, job.ID, ""))(t)
	if aborted, err := client.Heartbeat(ctx, leased, -1); err != nil || !aborted {
		t.Fatalf("heartbeat after abort: %v %v", aborted, err)
	}
}

func TestQueueViews(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	specs := make([]jobwire.JobSpec, 5)
	for i := range specs {
		specs[i] = jobwire.JobSpec{Function: map[bool]string{true: "even", false: "odd"}[i%2 == 0], Kwargs: map[string]int{"i": i}}
	}
	jobs := must(client.EnqueueBatch(ctx, specs))(t)
	must(client.Enqueue(ctx, "later", nil, &jobwire.JobOptions{Scheduled: time.Now().Add(time.Hour)}))(t)
	info := must(client.QueueInfo(ctx))(t)
	if info.Name != client.QueueName() || info.Counts[jobwire.StatusQueued] != 5 || info.Counts[jobwire.StatusScheduled] != 1 {
		t.Fatalf("info: %+v", info)
	}
	queues := must(client.ListQueues(ctx))(t)
	found := false
	for _, q := range queues {
		found = found || (q.Name == client.QueueName() && q.Counts[jobwire.StatusQueued] == 5)
	}
	if !found {
		t.Fatalf("queue %s not listed with its counts: %+v", client.QueueName(), queues)
	}
	var seen []string
	options := jobwire.ListJobsOptions{Status: jobwire.StatusQueued, Limit: 2}
	for page := 0; page < 10; page++ {
		reply := must(client.ListJobs(ctx, options))(t)
		for _, j := range reply.Jobs {
			seen = append(seen, j.ID)
		}
		if reply.NextCursor == "" {
			break
		}
		options.Cursor = reply.NextCursor
	}
	var want []string
	for _, j := range jobs {
		want = append(want, j.ID)
	}
	sort.Strings(seen)
	sort.Strings(want)
	if len(seen) != len(want) || seen[0] != want[0] || seen[4] != want[4] {
		t.Fatalf("paged through %v, want %v", seen, want)
	}
	odd := must(client.ListJobs(ctx, jobwire.ListJobsOptions{Function: "odd"}))(t)
	if len(odd.Jobs) != 2 || odd.NextCursor != "" {
		t.Fatalf("odd: %d jobs, cursor %q", len(odd.Jobs), odd.NextCursor)
	}
}

func TestTokens(t *testing.T) {
	clientToken, workerToken := os.Getenv("JOBWIRE_TEST_CLIENT_TOKEN"), os.Getenv("JOBWIRE_TEST_WORKER_TOKEN")
	if clientToken == "" || workerToken == "" {
		t.Skip("the service has no tokens (JOBWIRE_TEST_CLIENT_TOKEN, JOBWIRE_TEST_WORKER_TOKEN)")
	}
	ctx, admin := testContext(t), newClient(t)
	anonymous := newClient(t, jobwire.WithToken(""))
	if _, err := anonymous.QueueInfo(ctx); !errors.Is(err, jobwire.ErrUnauthenticated) {
		t.Fatalf("no token: want ErrUnauthenticated, got %v", err)
	}
	withPassword, err := url.Parse(serviceURL(t))
	if err != nil {
		t.Fatal(err)
	}
	withPassword.User = url.UserPassword("", clientToken)
	asClient := must(jobwire.New(withPassword.String(), jobwire.WithQueue(admin.QueueName())))(t)
	if asClient.URL() != serviceURL(t) {
		t.Fatalf("the token should not stay in the URL: %s", asClient.URL())
	}
	job := must(asClient.Enqueue(ctx, "f", nil, nil))(t)
	if _, err := asClient.Lease(ctx, jobwire.LeaseOptions{WorkerID: "w"}); !errors.Is(err, jobwire.ErrForbidden) {
		t.Fatalf("client token leasing: want ErrForbidden, got %v", err)
	}
	if err := asClient.Delete(ctx, job.ID); !errors.Is(err, jobwire.ErrForbidden) {
		t.Fatalf("client token deleting: want ErrForbidden, got %v", err)
	}
	asWorker := must(jobwire.New(serviceURL(t), jobwire.WithToken(workerToken)))(t).ForQueue(admin.QueueName())
	if _, err := asWorker.Abort(ctx, job.ID, "not a worker's call"); !errors.Is(err, jobwire.ErrForbidden) {
		t.Fatalf("worker token aborting: want ErrForbidden, got %v", err)
	}
	// Workers may enqueue (cron ticks, follow-up jobs): here on another queue.
	if _, err := asWorker.ForQueue(admin.QueueName()+"-next").Enqueue(ctx, "next", nil, nil); err != nil {
		t.Fatalf("worker token enqueueing: %v", err)
	}
	if leased := leaseOne(ctx, t, asWorker); leased.ID != job.ID {
		t.Fatalf("worker leased %s, want %s", leased.ID, job.ID)
	}
}
