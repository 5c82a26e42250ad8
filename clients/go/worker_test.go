package jobwire_test

import (
	"bytes"
	"context"
	"errors"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	jobwire "github.com/jobwire/jobwire/clients/go"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startWorker(t *testing.T, client *jobwire.Client, options jobwire.WorkerOptions) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- jobwire.NewWorker(client, options).Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the worker did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestWorkerRunsFailsAbortsAndTimesOut(t *testing.T) {
	ctx := testContext(t)
	client := newClient(t)
	started := make(chan string, 4)
	stop := startWorker(t, client, jobwire.WorkerOptions{
		Concurrency:   4,
		RenewInterval: 100 * time.Millisecond,
		Functions: map[string]jobwire.Handler{
			"double": func(ctx context.Context, job *jobwire.Job) (any, error) {
				return int(job.Kwargs["n"].(float64)) * 2, nil
			},
			"boom": func(ctx context.Context, job *jobwire.Job) (any, error) {
				return nil, errors.New("boom")
			},
			"wait": func(ctx context.Context, job *jobwire.Job) (any, error) {
				started <- job.ID
				<-ctx.Done()
				return nil, ctx.Err()
			},
		},
	})
	double := must(client.Enqueue(ctx, "double", map[string]any{"n": 21}, nil))(t)
	boom := must(client.Enqueue(ctx, "boom", nil, nil))(t)
	slow := must(client.Enqueue(ctx, "wait", nil, nil))(t)
	timed := must(client.Enqueue(ctx, "wait", nil, &jobwire.JobOptions{Timeout: 300 * time.Millisecond}))(t)
	if done := must(client.GetJob(ctx, double.ID, 10*time.Second))(t); done.Status != jobwire.StatusComplete || string(done.Result) != "42.0" && string(done.Result) != "42" {
		t.Fatalf("double: %s %s", done.Status, done.Result)
	}
	if done := must(client.GetJob(ctx, boom.ID, 10*time.Second))(t); done.Status != jobwire.StatusFailed || done.Error.Message != "boom" {
		t.Fatalf("boom: %+v", done)
	}
	if done := must(client.GetJob(ctx, timed.ID, 10*time.Second))(t); done.Status != jobwire.StatusFailed || done.Error.Type != "TimeoutError" {
		t.Fatalf("timeout: %+v %+v", done.Status, done.Error)
	}
	for id := range started {
		if id == slow.ID {
			break
		}
	}
	must(client.Abort(ctx, slow.ID, "enough", jobwire.InQueue(client.QueueName())))(t)
	if done := must(client.GetJob(ctx, slow.ID, 10*time.Second))(t); done.Status != jobwire.StatusAborted {
		t.Fatalf("abort: %+v", done.Status)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestWorkerStopHandsBackRunningJobs(t *testing.T) {
	ctx := testContext(t)
	client := newClient(t)
	started := make(chan struct{}, 1)
	stop := startWorker(t, client, jobwire.WorkerOptions{
		ShutdownGrace: 200 * time.Millisecond,
		Functions: map[string]jobwire.Handler{
			"stuck": func(ctx context.Context, job *jobwire.Job) (any, error) {
				started <- struct{}{}
				<-ctx.Done()
				return nil, ctx.Err()
			},
		},
	})
	job := must(client.Enqueue(ctx, "stuck", nil, nil))(t)
	<-started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	after := must(client.GetJob(ctx, job.ID, 0))(t)
	if after.Status != jobwire.StatusQueued || after.Worker == nil {
		t.Fatalf("after stop: %s (worker %v)", after.Status, after.Worker)
	}
}

func TestWorkerStopsWithOneLineOnARefusedToken(t *testing.T) {
	client := newClient(t, jobwire.WithToken("not-a-token"))
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := jobwire.NewWorker(client, jobwire.WorkerOptions{Logger: log.New(&logs, "", 0)}).Run(ctx)
	if !errors.Is(err, jobwire.ErrUnauthenticated) {
		t.Fatalf("want ErrUnauthenticated, got %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run kept going after the refusal")
	}
	if lines := strings.Count(logs.String(), "\n"); lines != 1 {
		t.Fatalf("want one log line, got %d:\n%s", lines, logs.String())
	}
}
