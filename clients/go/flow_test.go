package jobwire_test

import (
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	jobwire "github.com/jobwire/jobwire/clients/go"
)

func TestPauseAndResume(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	if err := client.PauseQueue(ctx); err != nil {
		t.Fatal(err)
	}
	job := must(client.Enqueue(ctx, "f", nil, nil))(t) // enqueue still works
	if info := must(client.QueueInfo(ctx))(t); !info.Paused || info.Counts[jobwire.StatusQueued] != 1 {
		t.Fatalf("paused queue info: %+v", info)
	}
	if state := must(client.QueueSettings(ctx))(t); !state.Paused || state.Queue != client.QueueName() {
		t.Fatalf("settings of a paused queue: %+v", state)
	}
	jobs := must(client.Lease(ctx, jobwire.LeaseOptions{WorkerID: "w", Wait: 300 * time.Millisecond}))(t)
	if len(jobs) != 0 {
		t.Fatalf("leased %d jobs of a paused queue", len(jobs))
	}
	if err := client.ResumeQueue(ctx); err != nil {
		t.Fatal(err)
	}
	if info := must(client.QueueInfo(ctx))(t); info.Paused {
		t.Fatalf("resumed queue still paused: %+v", info)
	}
	if leased := leaseOne(ctx, t, client); leased.ID != job.ID {
		t.Fatalf("leased %s, want %s", leased.ID, job.ID)
	}
}

func TestQueueSettingsRoundTrip(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	empty := must(client.QueueSettings(ctx))(t)
	if empty.Paused || !reflect.DeepEqual(empty.Settings, jobwire.QueueSettings{}) {
		t.Fatalf("a new queue's settings: %+v", empty)
	}
	settings := jobwire.QueueSettings{
		MaxActive:       5,
		MaxActivePerKey: 1,
		Rate:            &jobwire.Rate{Limit: 100, PeriodSeconds: 1},
		RatePerKey:      &jobwire.Rate{Limit: 10, PeriodSeconds: 0.5},
		Functions: map[string]jobwire.FunctionLimits{
			"f": {MaxActive: 2, Rate: &jobwire.Rate{Limit: 50, PeriodSeconds: 1}},
			"g": {MaxActive: 3},
		},
	}
	stored := must(client.SetQueueSettings(ctx, settings))(t)
	if stored.Queue != client.QueueName() || !reflect.DeepEqual(stored.Settings, settings) {
		t.Fatalf("stored %+v, want %+v", stored.Settings, settings)
	}
	if got := must(client.QueueSettings(ctx))(t); !reflect.DeepEqual(got.Settings, settings) {
		t.Fatalf("read back %+v", got.Settings)
	}
	if info := must(client.QueueInfo(ctx))(t); !reflect.DeepEqual(info.Settings, settings) {
		t.Fatalf("queue info settings %+v", info.Settings)
	}
	defaulted := must(client.SetQueueSettings(ctx, jobwire.QueueSettings{Rate: &jobwire.Rate{Limit: 7}}))(t)
	if r := defaulted.Settings.Rate; r == nil || *r != (jobwire.Rate{Limit: 7, PeriodSeconds: 1}) {
		t.Fatalf("a rate without a period: %+v", r)
	}
	cleared := must(client.SetQueueSettings(ctx, jobwire.QueueSettings{}))(t)
	if !reflect.DeepEqual(cleared.Settings, jobwire.QueueSettings{}) {
		t.Fatalf("cleared settings: %+v", cleared.Settings)
	}
	_, err := client.SetQueueSettings(ctx, jobwire.QueueSettings{MaxActive: -1})
	var apiErr *jobwire.Error
	if !errors.Is(err, jobwire.ErrInvalidRequest) || !errors.As(err, &apiErr) || !strings.Contains(apiErr.Message, "max_active") {
		t.Fatalf("a negative limit: want ErrInvalidRequest naming max_active, got %v", err)
	}
}

func TestConcurrencyKeyAndAPerKeyLimit(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	must(client.SetQueueSettings(ctx, jobwire.QueueSettings{MaxActivePerKey: 1}))(t)
	specs := []jobwire.JobSpec{
		{Function: "f", JobOptions: jobwire.JobOptions{ConcurrencyKey: "tenant-a"}},
		{Function: "f", JobOptions: jobwire.JobOptions{ConcurrencyKey: "tenant-a"}},
		{Function: "f", JobOptions: jobwire.JobOptions{ConcurrencyKey: "tenant-b"}},
		{Function: "f"},
	}
	jobs := must(client.EnqueueBatch(ctx, specs))(t)
	if jobs[0].ConcurrencyKey == nil || *jobs[0].ConcurrencyKey != "tenant-a" || jobs[3].ConcurrencyKey != nil {
		t.Fatalf("concurrency keys: %v %v", jobs[0].ConcurrencyKey, jobs[3].ConcurrencyKey)
	}
	stored := must(client.GetJob(ctx, jobs[2].ID, 0))(t)
	if stored.ConcurrencyKey == nil || *stored.ConcurrencyKey != "tenant-b" {
		t.Fatalf("stored concurrency key: %v", stored.ConcurrencyKey)
	}
	leased := must(client.Lease(ctx, jobwire.LeaseOptions{WorkerID: "w", Max: 10}))(t)
	var keys []string
	for _, j := range leased {
		key := "none"
		if j.ConcurrencyKey != nil {
			key = *j.ConcurrencyKey
		}
		keys = append(keys, key)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"none", "tenant-a", "tenant-b"}) {
		t.Fatalf("leased keys %v: one per key at most, keyless jobs free", keys)
	}
}

func TestBulkRetryAbortDeleteAndKeyPrefix(t *testing.T) {
	ctx, client := testContext(t), newClient(t)
	must(client.EnqueueBatch(ctx, []jobwire.JobSpec{
		{Function: "f", JobOptions: jobwire.JobOptions{Key: "k-1"}},
		{Function: "f", JobOptions: jobwire.JobOptions{Key: "k-2"}},
	}))(t)
	for _, leased := range must(client.Lease(ctx, jobwire.LeaseOptions{WorkerID: "w", Max: 2}))(t) {
		must(client.Fail(ctx, leased, jobwire.ErrorInfo{Message: "no"}, true))(t)
	}
	must(client.EnqueueBatch(ctx, []jobwire.JobSpec{
		{Function: "f", JobOptions: jobwire.JobOptions{Key: "other-1"}},
		{Function: "g"},
	}))(t)
	page := must(client.ListJobs(ctx, jobwire.ListJobsOptions{KeyPrefix: "k-"}))(t)
	if len(page.Jobs) != 2 || page.Jobs[0].Status != jobwire.StatusFailed {
		t.Fatalf("listing by key prefix: %+v", page.Jobs)
	}
	counts := []struct {
		call func() (int, error)
		want int
	}{
		{func() (int, error) {
			return client.RetryJobs(ctx, jobwire.JobFilter{Status: jobwire.StatusFailed, EnqueuedAfter: time.Unix(1, 0)})
		}, 2},
		{func() (int, error) { return client.RetryJobs(ctx, jobwire.JobFilter{Status: jobwire.StatusFailed}) }, 0},
		{func() (int, error) { return client.AbortJobs(ctx, jobwire.JobFilter{KeyPrefix: "k-"}) }, 2},
		{func() (int, error) {
			return client.AbortJobs(ctx, jobwire.JobFilter{Function: "f", EnqueuedBefore: time.Unix(1, 0)})
		}, 0},
		{func() (int, error) { return client.DeleteJobs(ctx, jobwire.JobFilter{Status: jobwire.StatusAborted}) }, 2},
		{func() (int, error) { return client.DeleteJobs(ctx, jobwire.JobFilter{}) }, 2},
	}
	for i, c := range counts {
		if got := must(c.call())(t); got != c.want {
			t.Fatalf("bulk call %d: %d jobs, want %d", i, got, c.want)
		}
	}
	if rest := must(client.ListJobs(ctx, jobwire.ListJobsOptions{}))(t); len(rest.Jobs) != 0 {
		t.Fatalf("after deleting everything: %d jobs", len(rest.Jobs))
	}
}

func TestFlowControlRoles(t *testing.T) {
	clientToken, workerToken := os.Getenv("JOBWIRE_TEST_CLIENT_TOKEN"), os.Getenv("JOBWIRE_TEST_WORKER_TOKEN")
	if clientToken == "" || workerToken == "" {
		t.Skip("the service has no tokens (JOBWIRE_TEST_CLIENT_TOKEN, JOBWIRE_TEST_WORKER_TOKEN)")
	}
	ctx, admin := testContext(t), newClient(t)
	asClient := must(jobwire.New(serviceURL(t), jobwire.WithToken(clientToken)))(t).ForQueue(admin.QueueName())
	asWorker := must(jobwire.New(serviceURL(t), jobwire.WithToken(workerToken)))(t).ForQueue(admin.QueueName())
	must(asClient.Enqueue(ctx, "f", nil, nil))(t)
	refused := map[string]error{
		"client pauses":         asClient.PauseQueue(ctx),
		"client resumes":        asClient.ResumeQueue(ctx),
		"worker pauses":         asWorker.PauseQueue(ctx),
		"client sets limits":    second(asClient.SetQueueSettings(ctx, jobwire.QueueSettings{MaxActive: 1})),
		"client deletes":        second(asClient.DeleteJobs(ctx, jobwire.JobFilter{})),
		"worker aborts in bulk": second(asWorker.AbortJobs(ctx, jobwire.JobFilter{})),
	}
	for what, err := range refused {
		if !errors.Is(err, jobwire.ErrForbidden) {
			t.Errorf("%s: want ErrForbidden, got %v", what, err)
		}
	}
	if state := must(asWorker.QueueSettings(ctx))(t); state.Paused {
		t.Fatalf("a worker reads the settings: %+v", state)
	}
	if n := must(asClient.RetryJobs(ctx, jobwire.JobFilter{Status: jobwire.StatusFailed}))(t); n != 0 {
		t.Fatalf("client retried %d", n)
	}
	if n := must(asClient.AbortJobs(ctx, jobwire.JobFilter{}))(t); n != 1 {
		t.Fatalf("client aborted %d, want 1", n)
	}
}

// second is the error of a call that returns a value and an error.
func second[T any](_ T, err error) error { return err }
