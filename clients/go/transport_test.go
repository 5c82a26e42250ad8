package jobwire_test

// Retries and error mapping against small local fake servers (no service needed).

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	jobwire "github.com/jobwire/jobwire/clients/go"
)

var fast = jobwire.WithRetries(3, 5*time.Millisecond, 20*time.Millisecond)

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func unavailable(w http.ResponseWriter) {
	reply(w, 503, map[string]any{"error": map[string]string{"code": "not_ready", "message": "backend down"}})
}

var job = map[string]any{"id": "j1", "function": "f", "status": "queued", "retry_backoff": 12.5}

func TestIdempotentCallsAreRetriedOn503(t *testing.T) {
	var calls int32
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if atomic.AddInt32(&calls, 1) <= 2 {
			unavailable(w)
			return
		}
		reply(w, 200, job)
	}))
	defer server.Close()
	client := must(jobwire.New(server.URL, fast))(t)
	got := must(client.GetJob(context.Background(), "j1", 0))(t)
	if got.ID != "j1" || atomic.LoadInt32(&calls) != 3 || got.RetryBackoff != (jobwire.Backoff{Enabled: true, CapSeconds: 12.5}) {
		t.Fatalf("job %+v after %d calls", got, calls)
	}
}

func TestRetriesRunOutIntoErrUnavailable(t *testing.T) {
	var calls int32
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atomic.AddInt32(&calls, 1)
		unavailable(w)
	}))
	defer server.Close()
	client := must(jobwire.New(server.URL, fast))(t)
	_, err := client.QueueInfo(context.Background())
	var apiErr *jobwire.Error
	if !errors.Is(err, jobwire.ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Code != "not_ready" ||
		atomic.LoadInt32(&calls) != 4 {
		t.Fatalf("got %v after %d calls", err, atomic.LoadInt32(&calls))
	}
	atomic.StoreInt32(&calls, 0)
	_, err = client.Retry(context.Background(), "j1")
	if !errors.Is(err, jobwire.ErrUnavailable) || atomic.LoadInt32(&calls) != 1 {
		t.Fatalf("a non-idempotent call: %v after %d calls (want 1)", err, atomic.LoadInt32(&calls))
	}
}

func TestEnqueueResendsTheSameID(t *testing.T) {
	var ids []string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID string `json:"id"`
		}
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &body)
		ids = append(ids, body.ID)
		if len(ids) == 1 {
			unavailable(w)
			return
		}
		reply(w, 201, job)
	}))
	defer server.Close()
	client := must(jobwire.New(server.URL, fast))(t)
	must(client.Enqueue(context.Background(), "f", nil, nil))(t)
	if len(ids) != 2 || ids[0] != ids[1] || len(ids[0]) != 32 {
		t.Fatalf("ids sent: %v", ids)
	}
}

func TestRefusedConnectionsAreRetriedThenReported(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	listener.Close() // nothing listens there now
	client := must(jobwire.New("http://"+address, jobwire.WithRetries(3, 40*time.Millisecond, time.Second)))(t)
	started := time.Now()
	_, err = client.Lease(context.Background(), jobwire.LeaseOptions{WorkerID: "w"}) // not idempotent
	var connErr *jobwire.ConnectionError
	if !errors.As(err, &connErr) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("want a refused ConnectionError, got %v", err)
	}
	if elapsed := time.Since(started); elapsed < 140*time.Millisecond {
		t.Fatalf("gave up after %v: backoffs of at least 20+40+80 ms expected", elapsed)
	}
}

func TestTokenHeaderAndUnknownErrors(t *testing.T) {
	var seen []string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("authorization"))
		reply(w, 418, map[string]any{"error": map[string]string{"code": "teapot", "message": "no"}})
	}))
	defer server.Close()
	client := must(jobwire.New(server.URL, jobwire.WithToken("tok-a")))(t)
	_, err := client.GetJob(context.Background(), "j1", 0)
	var apiErr *jobwire.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "teapot" || apiErr.Status != 418 || errors.Is(err, jobwire.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	anonymous := must(jobwire.New(server.URL, jobwire.WithToken("")))(t)
	_, _ = anonymous.GetJob(context.Background(), "j1", 0)
	if len(seen) != 2 || seen[0] != "Bearer tok-a" || seen[1] != "" {
		t.Fatalf("authorization headers: %q", seen)
	}
	if _, err := jobwire.New("ftp://example"); err == nil {
		t.Fatal("an ftp URL should be refused")
	}
}

func TestAContextEndingDuringBackoffWinsOverTheTransportError(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { unavailable(w) }))
	defer server.Close()
	client := must(jobwire.New(server.URL, jobwire.WithRetries(10, 200*time.Millisecond, time.Second)))(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := client.GetJob(ctx, "j1", 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want context.DeadlineExceeded, got %v", err)
	}
	if !strings.Contains(err.Error(), "backend down") {
		t.Fatalf("the last error should stay in the message: %v", err)
	}
}
