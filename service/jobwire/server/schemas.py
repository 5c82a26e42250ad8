"""Request and response bodies of the REST API (validated by pydantic)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobwire import flow
from jobwire.backends.base import Outcome
from jobwire.job import (
    JOB_ID_PATTERN,
    LIMITS,
    PRIORITY_MAX,
    PRIORITY_MIN,
    ErrorInfo,
    Job,
    Status,
)

JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# The limits of jobwire.job.LIMITS, which Job.validate enforces on every path.
OptionSeconds = Annotated[float, Field(ge=0, le=LIMITS.seconds_max, allow_inf_nan=False)]
NO_NUL = r"^[^\x00]*$"
LEASE_CHARS = 200
# A lease token or worker id as a worker sends it back: the stores compare it with what
# they hold (PostgreSQL's text cannot hold NUL: a NUL would fail the statement).
Token = Annotated[str, Field(min_length=1, max_length=LEASE_CHARS, pattern=NO_NUL)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnqueueRequest(_Strict):
    """One job to enqueue. Options left out take the server's defaults."""

    function: str = Field(
        min_length=1, max_length=LIMITS.function_chars, pattern=NO_NUL,
        description="Task function name (no NUL).",
    )  # fmt: skip
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Keyword arguments (at most {LIMITS.json_bytes} bytes as JSON).",
    )
    id: JobId | None = Field(None, description="Job id (generated when absent).")
    key: str | None = Field(
        None, min_length=1, max_length=LIMITS.key_chars, pattern=NO_NUL,
        description="Deduplication key (no NUL).",
    )  # fmt: skip
    concurrency_key: str | None = Field(
        None, min_length=1, max_length=LIMITS.key_chars, pattern=NO_NUL,
        description="Groups jobs for the queue's per-key limits, a tenant id say (no NUL).",
    )  # fmt: skip
    timeout: Annotated[float, Field(gt=0, le=LIMITS.seconds_max, allow_inf_nan=False)] | None = (
        Field(None, description="Seconds before the worker cancels the task.")
    )
    retries: int = Field(
        0, ge=0, le=LIMITS.retries_max, description="Retries after the first attempt."
    )
    ttl: int = Field(
        600, ge=-1, le=LIMITS.ttl_max,
        description="Seconds the finished job stays readable (0: kept, -1: deleted at once).",
    )  # fmt: skip
    heartbeat: OptionSeconds = Field(  # validated: 0.0, as a stored job has it, not 0
        0, validate_default=True, description="Lease length in seconds (0: default)."
    )
    scheduled: Annotated[float, Field(ge=0, le=LIMITS.scheduled_max, allow_inf_nan=False)] = Field(
        0, description="Unix time before which it does not start."
    )
    retry_delay: OptionSeconds = Field(0, description="Seconds before a retry.")
    retry_backoff: bool | OptionSeconds = Field(
        False, description="Double the delay each retry (a number caps it)."
    )
    priority: int = Field(0, ge=PRIORITY_MIN, le=PRIORITY_MAX, description="Higher runs first.")

    def to_job(self, queue: str) -> Job:
        """The Job this request describes."""
        fields = self.model_dump(exclude_none=True)
        return Job(queue=queue, **fields)


class BatchRequest(_Strict):
    """Many jobs, enqueued in one backend round trip."""

    jobs: list[EnqueueRequest] = Field(min_length=1, max_length=1000)


class ErrorBody(_Strict):
    """Why a job failed."""

    type: str = Field("Error", max_length=200)
    message: str = Field("", max_length=10_000)
    traceback: str = Field("", max_length=100_000)

    def to_error(self) -> ErrorInfo:
        """The ``ErrorInfo`` this body describes."""
        return ErrorInfo(self.type, self.message, self.traceback)


class WorkerDetails(_Strict):
    """What a worker says of itself beyond its functions (shown in queue info)."""

    concurrency: int = Field(0, ge=0, le=1_000_000, description="Jobs it runs at once.")
    running: int = Field(0, ge=0, le=1_000_000, description="Jobs it runs now.")
    host: str = Field("", max_length=255, description="Host name.")
    pid: int = Field(0, ge=0, description="Process id.")


class LeaseRequest(_Strict):
    """A worker asking for jobs."""

    worker_id: Token
    functions: list[str] = Field(default_factory=list, description="Recorded as worker info.")
    worker: WorkerDetails | None = Field(None, description="Recorded as worker info.")
    max: int = Field(1, ge=1, le=1000, description="Most jobs to take.")
    wait: Seconds = Field(0, description="Seconds to hold the request open if nothing is due.")
    lease_s: Annotated[float, Field(gt=0, le=86_400)] | None = Field(
        None, description="Lease length for jobs without a heartbeat (server default: 30 s)."
    )


class HeartbeatRequest(_Strict):
    """A worker renewing its lease, optionally with progress."""

    lease: Token
    progress: Annotated[float, Field(ge=0, le=1)] | None = None
    meta: dict[str, Any] | None = Field(None, description="Keys merged into the job's meta.")


class CompleteRequest(_Strict):
    """A worker reporting success."""

    lease: Token
    result: Any = None
    run_s: Seconds | None = None


class FailRequest(_Strict):
    """A worker reporting failure."""

    lease: Token
    error: ErrorBody = Field(default_factory=lambda: ErrorBody())
    retryable: bool = Field(True, description="Retry if the job has retries left.")
    run_s: Seconds | None = None


class LeaseRef(_Strict):
    """A job and the lease its worker holds."""

    job_id: JobId
    lease: Token


class RenewRequest(_Strict):
    """Renew many leases at once (the SDK's heartbeat)."""

    leases: list[LeaseRef] = Field(max_length=10_000)
    lease_s: Annotated[float, Field(gt=0, le=86_400)] | None = None


class OutcomeBody(_Strict):
    """How one attempt ended, as the SDK reports it in batches."""

    job_id: JobId
    lease: Token
    status: Literal[Status.COMPLETE, Status.FAILED, Status.ABORTED, Status.QUEUED] = Field(
        description="`queued` runs the job again; without an `error` it hands the job back "
        "unstarted, and the attempt is not counted."
    )
    function: str = Field("unknown", max_length=200, description="For metrics labels.")
    result: Any = None
    error: ErrorBody | None = None
    delay_s: OptionSeconds = 0
    run_s: Seconds | None = None

    def to_outcome(self) -> Outcome:
        """The ``Outcome`` this body describes."""
        return Outcome(
            self.job_id,
            self.lease,
            Status(self.status),
            result=self.result,
            error=self.error.to_error() if self.error else None,
            delay_s=self.delay_s,
            run_s=self.run_s,
            function=self.function,
        )


class SettleRequest(_Strict):
    """Many outcomes in one request."""

    outcomes: list[OutcomeBody] = Field(max_length=10_000)


class AbortRequest(_Strict):
    """Why the job is aborted."""

    error: str = Field("aborted", max_length=10_000)


# Flow control: a queue's limits and the filter of bulk operations.

Limit = Annotated[int, Field(ge=1, le=flow.LIMIT_MAX)]
# As a key (no pattern: a pattern makes it a JSON schema patternProperties; a NUL is refused
# by QueueSettings.validate).
FunctionKey = Annotated[str, Field(min_length=1, max_length=LIMITS.function_chars)]


class RateBody(_Strict):
    """At most ``limit`` jobs start in any window of ``period_s`` seconds (sliding)."""

    limit: Limit = Field(description="Jobs per window.")
    period_s: float = Field(
        1.0, gt=0, le=flow.PERIOD_MAX_S, allow_inf_nan=False, description="The window, seconds."
    )

    def to_rate(self) -> flow.Rate:
        """The ``Rate`` this body describes."""
        return flow.Rate(self.limit, self.period_s)


class FunctionLimitsBody(_Strict):
    """Limits on the jobs of one function, across every worker (absent: no limit)."""

    max_active: Limit | None = Field(None, description="Jobs of the function active at once.")
    rate: RateBody | None = Field(None, description="Jobs of the function started per window.")

    def to_limits(self) -> flow.FunctionLimits:
        """The ``FunctionLimits`` this body describes."""
        return flow.FunctionLimits(self.max_active, self.rate.to_rate() if self.rate else None)


class QueueSettingsBody(_Strict):
    """A queue's limits, across every worker; an absent (or null) limit is no limit."""

    max_active: Limit | None = Field(None, description="Jobs of the queue active at once.")
    max_active_per_key: Limit | None = Field(
        None, description="Jobs active at once per `concurrency_key` (jobs without one: free)."
    )
    rate: RateBody | None = Field(None, description="Jobs of the queue started per window.")
    rate_per_key: RateBody | None = Field(
        None, description="Jobs started per window per `concurrency_key`."
    )
    functions: dict[FunctionKey, FunctionLimitsBody] = Field(
        default_factory=dict,
        max_length=flow.MAX_FUNCTION_LIMITS,
        description="Limits per function name.",
    )

    def to_settings(self) -> flow.QueueSettings:
        """The ``QueueSettings`` this body describes."""
        return flow.QueueSettings(
            max_active=self.max_active,
            max_active_per_key=self.max_active_per_key,
            rate=self.rate.to_rate() if self.rate else None,
            rate_per_key=self.rate_per_key.to_rate() if self.rate_per_key else None,
            functions={name: f.to_limits() for name, f in self.functions.items()},
        )


UnixTime = Annotated[float, Field(ge=0, le=LIMITS.scheduled_max, allow_inf_nan=False)]


class JobFilterBody(_Strict):
    """Which jobs of a queue a bulk operation takes; absent fields match every job."""

    status: Status | None = Field(None, description="Only jobs in this status.")
    function: str | None = Field(
        None, min_length=1, max_length=LIMITS.function_chars, pattern=NO_NUL,
        description="Only jobs of this function.",
    )  # fmt: skip
    key_prefix: str | None = Field(
        None, min_length=1, max_length=LIMITS.key_chars, pattern=NO_NUL,
        description="Only jobs whose deduplication `key` starts with this.",
    )  # fmt: skip
    enqueued_before: UnixTime | None = Field(
        None, description="Only jobs created before this Unix time (seconds)."
    )
    enqueued_after: UnixTime | None = Field(
        None, description="Only jobs created at or after this Unix time (seconds)."
    )

    def to_filter(self) -> flow.JobFilter:
        """The ``JobFilter`` this body describes."""
        return flow.JobFilter(**self.model_dump())
