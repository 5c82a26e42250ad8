package jobwire_test

// Examples run by `go test` against the service at $JOBWIRE_URL (with $JOBWIRE_TOKEN), as
// tests/clients/test_go.py runs them.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	jobwire "github.com/jobwire/jobwire/clients/go"
)

func exampleQueue(name string) string {
	return "example-" + name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func ExampleClient_Enqueue() {
	ctx := context.Background()
	client, err := jobwire.New("", jobwire.WithQueue(exampleQueue("enqueue"))) // $JOBWIRE_URL, $JOBWIRE_TOKEN
	if err != nil {
		panic(err)
	}
	job, err := client.Enqueue(ctx, "send_email", map[string]any{"to": "a@example.com"},
		&jobwire.JobOptions{Retries: 2, Key: "welcome-1"})
	if err != nil {
		panic(err)
	}
	again, _ := client.Enqueue(ctx, "send_email", nil, &jobwire.JobOptions{Key: "welcome-1"})
	fmt.Println(job.Status, again.Duplicate, again.ID == job.ID)

	aborted, _ := client.Abort(ctx, job.ID, "changed my mind", jobwire.InQueue(client.QueueName()))
	fmt.Println(aborted.Status, aborted.Error.Message)

	_, err = client.GetJob(ctx, "no-such-job", 0)
	fmt.Println(errors.Is(err, jobwire.ErrNotFound))
	// Output:
	// queued true true
	// aborted changed my mind
	// true
}

func ExampleWorker() {
	client, err := jobwire.New("", jobwire.WithQueue(exampleQueue("worker")))
	if err != nil {
		panic(err)
	}
	worker := jobwire.NewWorker(client, jobwire.WorkerOptions{
		Concurrency: 4,
		Functions: map[string]jobwire.Handler{
			// ctx ends on abort, timeout, a lost lease or the worker's stop.
			"double": func(ctx context.Context, job *jobwire.Job) (any, error) {
				return int(job.Kwargs["n"].(float64)) * 2, nil
			},
		},
	})
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- worker.Run(ctx) }() // in a program: signal.NotifyContext

	job, _ := client.Enqueue(context.Background(), "double", map[string]any{"n": 21}, nil)
	done, _ := client.GetJob(context.Background(), job.ID, 10*time.Second)
	var result int
	_ = done.DecodeResult(&result)
	fmt.Println(done.Status, result)

	stop() // graceful: no more leases, running jobs finish, unstarted ones go back
	fmt.Println(<-stopped)
	// Output:
	// complete 42
	// <nil>
}
