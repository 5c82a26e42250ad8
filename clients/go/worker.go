package jobwire

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"
)

// Handler runs one job. Its ctx ends when the job is aborted, its timeout runs out, its
// lease is lost or the worker stops: return promptly then. The returned value (JSON) is
// the job's result; an error fails the attempt (the service retries it if it has retries).
type Handler func(ctx context.Context, job *Job) (any, error)

// WorkerOptions configure a Worker. Zero values take the defaults.
type WorkerOptions struct {
	// Functions maps function names to handlers; a job of another function fails at once.
	Functions map[string]Handler
	// Concurrency is how many jobs run at once (default 10).
	Concurrency int
	// LeaseWait is how long one lease request waits when nothing is due (default 1 s);
	// it bounds how long Run takes to notice its context ended.
	LeaseWait time.Duration
	// RenewInterval is how often running jobs' leases are renewed, which is how soon an
	// abort is noticed (default 500 ms; never more than a third of a job's lease).
	RenewInterval time.Duration
	// ShutdownGrace is how long running jobs may finish once Run's context ends, before
	// they are cancelled and handed back (default 10 s).
	ShutdownGrace time.Duration
	// ID names the worker (default host-pid-random).
	ID string
	// Logger receives one line per event worth a line (default log.Default()).
	Logger *log.Logger
}

// Worker leases jobs of its client's queue and runs them with the same behaviour as the
// TypeScript and Python workers: concurrency, lease renewal, abort through context
// cancellation, timeouts, and a graceful stop that hands back unstarted jobs.
type Worker struct {
	client  *Client
	options WorkerOptions
	mu      sync.Mutex
	running map[string]*attempt
	freed   chan struct{}
}

type attempt struct {
	job    *Job
	cancel context.CancelFunc
	mu     sync.Mutex
	reason string // "", "abort", "lost", "shutdown"
}

func (a *attempt) stop(reason string) {
	a.mu.Lock()
	if a.reason == "" {
		a.reason = reason
	}
	a.mu.Unlock()
	a.cancel()
}

func (a *attempt) why() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reason
}

// NewWorker returns a worker of client's queue (see Client.ForQueue).
func NewWorker(client *Client, options WorkerOptions) *Worker {
	if options.Concurrency <= 0 {
		options.Concurrency = 10
	}
	if options.LeaseWait <= 0 {
		options.LeaseWait = time.Second
	}
	if options.RenewInterval <= 0 {
		options.RenewInterval = 500 * time.Millisecond
	}
	if options.ShutdownGrace <= 0 {
		options.ShutdownGrace = 10 * time.Second
	}
	if options.ID == "" {
		host, _ := os.Hostname()
		options.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:6])
	}
	if options.Logger == nil {
		options.Logger = log.Default()
	}
	return &Worker{client: client, options: options, running: map[string]*attempt{},
		freed: make(chan struct{}, 1)}
}

// ID is the worker's id, as the service shows it.
func (w *Worker) ID() string { return w.options.ID }

// Run leases and runs jobs until ctx ends, then stops gracefully: it leases no more
// (jobs leased in that instant are handed back unstarted), lets running jobs finish
// within ShutdownGrace, then cancels them and hands them back. It returns nil after a
// graceful stop, or the service's refusal of the token (ErrUnauthenticated or
// ErrForbidden, after one log line): retrying cannot help then.
func (w *Worker) Run(ctx context.Context) error {
	renewCtx, stopRenew := context.WithCancel(context.Background())
	defer stopRenew()
	go w.renewLoop(renewCtx)
	var wg sync.WaitGroup
	refused := w.leaseLoop(ctx, &wg)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.options.ShutdownGrace):
		w.mu.Lock()
		for _, a := range w.running {
			a.stop("shutdown")
		}
		w.mu.Unlock()
		<-done
	}
	return refused
}

func (w *Worker) leaseLoop(ctx context.Context, wg *sync.WaitGroup) error {
	functions := make([]string, 0, len(w.options.Functions))
	for name := range w.options.Functions {
		functions = append(functions, name)
	}
	failing, failures := "", 0
	for ctx.Err() == nil {
		w.mu.Lock()
		free := w.options.Concurrency - len(w.running)
		w.mu.Unlock()
		if free <= 0 {
			select {
			case <-w.freed:
			case <-ctx.Done():
			}
			continue
		}
		// Not ctx: a lease cut short could lose jobs the service already handed out.
		jobs, err := w.client.Lease(context.Background(), LeaseOptions{
			WorkerID: w.options.ID, Max: free, Wait: w.options.LeaseWait, Functions: functions})
		if errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrForbidden) {
			w.options.Logger.Printf("jobwire: worker %s stops: the service refused its token: %v", w.options.ID, err)
			return err
		}
		if err != nil {
			failures++
			if err.Error() != failing {
				failing = err.Error()
				w.options.Logger.Printf("jobwire: leasing failed (%v); retrying until it works", err)
			}
			_ = sleep(ctx, w.client.backoff(failures-1))
			continue
		}
		if failures > 0 {
			w.options.Logger.Printf("jobwire: leasing works again after %d failed tries", failures)
			failing, failures = "", 0
		}
		if ctx.Err() != nil {
			w.handBack(jobs)
			break
		}
		for _, job := range jobs {
			w.start(job, wg)
		}
	}
	return nil
}

func (w *Worker) handBack(jobs []*Job) {
	if len(jobs) == 0 {
		return
	}
	outcomes := make([]Outcome, len(jobs))
	for i, job := range jobs {
		outcomes[i] = Outcome{LeaseRef: LeaseRef{job.ID, job.Lease}, Status: StatusQueued, Function: job.Function}
	}
	if _, err := w.client.Settle(context.Background(), outcomes); err != nil {
		w.options.Logger.Printf("jobwire: handing back %d jobs failed: %v", len(jobs), err)
	}
}

func (w *Worker) start(job *Job, wg *sync.WaitGroup) {
	ctx, cancel := context.WithCancel(context.Background())
	if job.Timeout != nil && *job.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*job.Timeout*float64(time.Second)))
	}
	a := &attempt{job: job, cancel: cancel}
	w.mu.Lock()
	w.running[job.ID] = a
	w.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			cancel()
			w.mu.Lock()
			delete(w.running, job.ID)
			w.mu.Unlock()
			select {
			case w.freed <- struct{}{}:
			default:
			}
		}()
		w.finish(ctx, a, w.run(ctx, job))
	}()
}

type ran struct {
	result any
	err    error
}

func (w *Worker) run(ctx context.Context, job *Job) (out ran) {
	handler, ok := w.options.Functions[job.Function]
	if !ok {
		return ran{err: fmt.Errorf("no handler for function %q", job.Function)}
	}
	defer func() {
		if p := recover(); p != nil {
			out = ran{err: fmt.Errorf("panic: %v", p)}
		}
	}()
	result, err := handler(ctx, job)
	return ran{result, err}
}

func (w *Worker) finish(ctx context.Context, a *attempt, out ran) {
	job, ref := a.job, LeaseRef{a.job.ID, a.job.Lease}
	var outcome Outcome
	switch a.why() {
	case "lost": // a newer attempt owns the job: report nothing
		return
	case "abort":
		outcome = Outcome{Status: StatusAborted, Error: &ErrorInfo{Type: "Aborted", Message: "aborted"}}
	case "shutdown": // it ran: the error marks the attempt as counted
		outcome = Outcome{Status: StatusQueued, Error: &ErrorInfo{Type: "WorkerStopped", Message: "the worker stopped during this attempt"}}
	default:
		if out.err == nil {
			outcome = Outcome{Status: StatusComplete, Result: out.result}
			break
		}
		failure := ErrorInfo{Type: "Error", Message: out.err.Error()}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			failure = ErrorInfo{Type: "TimeoutError", Message: "the job's timeout ran out"}
		}
		if _, err := w.client.Fail(context.Background(), job, failure, true); err != nil && !errors.Is(err, ErrStaleLease) {
			w.options.Logger.Printf("jobwire: reporting job %s failed: %v", job.ID, err)
		}
		return
	}
	outcome.LeaseRef, outcome.Function = ref, job.Function
	if _, err := w.client.Settle(context.Background(), []Outcome{outcome}); err != nil {
		w.options.Logger.Printf("jobwire: reporting job %s failed: %v", job.ID, err)
	}
}

func (w *Worker) renewLoop(ctx context.Context) {
	for {
		interval := w.options.RenewInterval
		w.mu.Lock()
		attempts := make([]*attempt, 0, len(w.running))
		for _, a := range w.running {
			attempts = append(attempts, a)
			if lease := a.job.Heartbeat; lease > 0 && time.Duration(lease*float64(time.Second))/3 < interval {
				interval = time.Duration(lease * float64(time.Second) / 3)
			}
		}
		w.mu.Unlock()
		if sleep(ctx, interval) != nil {
			return
		}
		if len(attempts) == 0 {
			continue
		}
		refs := make([]LeaseRef, len(attempts))
		for i, a := range attempts {
			refs[i] = LeaseRef{a.job.ID, a.job.Lease}
		}
		states, err := w.client.Renew(ctx, refs)
		if err != nil || len(states) != len(attempts) {
			continue // the next renewal retries; a lease lapses only after 3 misses
		}
		for i, state := range states {
			switch state {
			case "aborting":
				attempts[i].stop("abort")
			case "lost":
				attempts[i].stop("lost")
			}
		}
	}
}
