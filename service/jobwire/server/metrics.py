"""Prometheus metrics of the service, in a registry of its own (one per app)."""

import time
from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from jobwire.flow import QueueSettings
from jobwire.job import Job, Status

_OUTCOMES = {Status.COMPLETE: "completed", Status.FAILED: "failed",
             Status.ABORTED: "aborted", Status.QUEUED: "retried"}  # fmt: skip
DEPTH_CACHE_S = 5.0
# Job run and queue-wait times: from milliseconds to a day (the library's default buckets
# end at 10 s, where every long job would land in +Inf). Settings can replace them.
JOB_SECONDS_BUCKETS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200,
    14400, 28800, 86400,
)  # fmt: skip

# No `<name>_created` series: a timestamp per labelled child, noise on every scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library


class Metrics:
    """The service's counters, histograms and gauges."""

    def __init__(
        self,
        run_buckets: Sequence[float] = JOB_SECONDS_BUCKETS,
        wait_buckets: Sequence[float] = JOB_SECONDS_BUCKETS,
    ) -> None:
        """Create the metrics in a registry of their own.

        Args:
            run_buckets: Upper bounds (s) of ``jobwire_job_run_seconds``'s buckets.
            wait_buckets: Upper bounds (s) of ``jobwire_job_queue_wait_seconds``'s buckets.
        """
        self.registry = CollectorRegistry()
        job_labels = ["queue", "function"]
        self.enqueued = Counter(
            "jobwire_jobs_enqueued",
            "Jobs created through this service.",
            job_labels,
            registry=self.registry,
        )
        self.settled = {
            name: Counter(
                f"jobwire_jobs_{name}",
                f"Attempts reported {name} to this service.",
                job_labels,
                registry=self.registry,
            )
            for name in _OUTCOMES.values()
        }
        self.run_seconds = Histogram(
            "jobwire_job_run_seconds",
            "Task run time reported by workers.",
            job_labels,
            buckets=run_buckets,
            registry=self.registry,
        )
        self.wait_seconds = Histogram(
            "jobwire_job_queue_wait_seconds",
            "Time from queued to leased, for jobs leased here.",
            job_labels,
            buckets=wait_buckets,
            registry=self.registry,
        )
        self.depth = Gauge(
            "jobwire_queue_jobs",
            "Jobs per queue and status (read at scrape).",
            ["queue", "status"],
            registry=self.registry,
        )
        self.workers = Gauge(
            "jobwire_queue_workers",
            "Workers seen in the last minute.",
            ["queue"],
            registry=self.registry,
        )
        self.paused = Gauge(
            "jobwire_queue_paused",
            "1 while the queue is paused (read at scrape).",
            ["queue"],
            registry=self.registry,
        )
        self.limit = Gauge(
            "jobwire_queue_limit",
            "A queue's flow-control limits (read at scrape): kind is max_active, "
            "max_active_per_key, rate or rate_per_key (jobs per second); function is "
            "empty for the queue's own.",
            ["queue", "function", "kind"],
            registry=self.registry,
        )
        self.requests = Counter(
            "jobwire_http_requests",
            "HTTP requests served.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "jobwire_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            registry=self.registry,
        )
        self.grpc_requests = Counter(
            "jobwire_grpc_requests",
            "gRPC calls served, by method and status code (a stream when it ends).",
            ["method", "code"],
            registry=self.registry,
        )
        self.grpc_latency = Histogram(
            "jobwire_grpc_request_duration_seconds",
            "gRPC call latency (a stream's whole life).",
            ["method"],
            registry=self.registry,
        )
        self._depth_read_at = 0.0

    def outcome(self, queue: str, function: str, status: Status, run_s: float | None) -> None:
        """Count one settled attempt (and its run time, when known)."""
        self.settled[_OUTCOMES[status]].labels(queue, function).inc()
        if run_s is not None:
            self.run_seconds.labels(queue, function).observe(run_s)

    def grpc_call(self, method: str, code: str, seconds: float) -> None:
        """Count one gRPC call that ended with ``code``, and its latency."""
        self.grpc_requests.labels(method, code).inc()
        self.grpc_latency.labels(method).observe(seconds)

    def leased(self, job: Job) -> None:
        """Observe how long a job waited in the queue."""
        if job.queued and job.started:
            self.wait_seconds.labels(job.queue, job.function).observe(
                max(job.started - job.queued, 0)
            )

    def depth_is_stale(self) -> bool:
        """Whether queue depths should be read again (they are cached briefly)."""
        return time.monotonic() - self._depth_read_at > DEPTH_CACHE_S

    def set_depth(self, queue: str, counts: dict[Status, int], workers: int) -> None:
        """Record a queue's counts as read from the backend."""
        for status, count in counts.items():
            self.depth.labels(queue, status.value).set(count)
        self.workers.labels(queue).set(workers)
        self._depth_read_at = time.monotonic()

    def set_paused(self, queue: str, paused: bool) -> None:
        """Record whether a queue is paused."""
        self.paused.labels(queue).set(1 if paused else 0)

    def set_limits(self, queue: str, settings: QueueSettings) -> None:
        """Record a queue's limits (dropping those no longer set)."""
        for labels in [labels for labels in _label_sets(self.limit) if labels[0] == queue]:
            self.limit.remove(*labels)
        scopes = [("", settings.max_active, settings.rate)] + [
            (name, f.max_active, f.rate) for name, f in settings.functions.items()
        ]
        for function, max_active, rate in scopes:
            if max_active is not None:
                self.limit.labels(queue, function, "max_active").set(max_active)
            if rate is not None:
                self.limit.labels(queue, function, "rate").set(rate.limit / rate.period_s)
        if settings.max_active_per_key is not None:
            self.limit.labels(queue, "", "max_active_per_key").set(settings.max_active_per_key)
        if settings.rate_per_key is not None:
            per_s = settings.rate_per_key.limit / settings.rate_per_key.period_s
            self.limit.labels(queue, "", "rate_per_key").set(per_s)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


def _label_sets(gauge: Gauge) -> list[tuple[str, ...]]:
    """The label values a gauge has series for."""
    return [tuple(s.labels.values()) for metric in gauge.collect() for s in metric.samples]
