"""Request and response bodies of the REST API (validated by pydantic)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobwire.job import JOB_ID_PATTERN, PRIORITY_MAX, PRIORITY_MIN, Job, Status

JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnqueueRequest(_Strict):
    """One job to enqueue. Options left out take the server's defaults."""

    function: str = Field(min_length=1, max_length=200, description="Task function name.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    id: JobId | None = Field(None, description="Job id (generated when absent).")
    key: str | None = Field(None, min_length=1, max_length=512, description="Deduplication key.")
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="Seconds before the worker cancels the task."
    )
    retries: int = Field(0, ge=0, description="Retries after the first attempt.")
    ttl: int = Field(600, ge=-1, description="Seconds the finished job stays readable.")
    heartbeat: Seconds = Field(  # validated: 0.0, as a stored job has it, not 0
        0, validate_default=True, description="Lease length in seconds (0: default)."
    )
    scheduled: Seconds = Field(0, description="Unix time before which it does not start.")
    retry_delay: Seconds = Field(0, description="Seconds before a retry.")
    retry_backoff: bool | Seconds = Field(False, description="Double the delay each retry.")
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


class LeaseRequest(_Strict):
    """A worker asking for jobs."""

    worker_id: str = Field(min_length=1, max_length=200)
    functions: list[str] = Field(default_factory=list, description="Recorded as worker info.")
    max: int = Field(1, ge=1, le=1000, description="Most jobs to take.")
    wait: Seconds = Field(0, description="Seconds to hold the request open if nothing is due.")
    lease_s: Annotated[float, Field(gt=0, le=86_400)] | None = Field(
        None, description="Lease length for jobs without a heartbeat (server default: 30 s)."
    )


class HeartbeatRequest(_Strict):
    """A worker renewing its lease, optionally with progress."""

    lease: str = Field(min_length=1, max_length=200)
    progress: Annotated[float, Field(ge=0, le=1)] | None = None
    meta: dict[str, Any] | None = Field(None, description="Keys merged into the job's meta.")


class CompleteRequest(_Strict):
    """A worker reporting success."""

    lease: str = Field(min_length=1, max_length=200)
    result: Any = None
    run_s: Seconds | None = None


class FailRequest(_Strict):
    """A worker reporting failure."""

    lease: str = Field(min_length=1, max_length=200)
    error: ErrorBody = Field(default_factory=lambda: ErrorBody())
    retryable: bool = Field(True, description="Retry if the job has retries left.")
    run_s: Seconds | None = None


class LeaseRef(_Strict):
    """A job and the lease its worker holds."""

    job_id: JobId
    lease: str = Field(min_length=1, max_length=200)


class RenewRequest(_Strict):
    """Renew many leases at once (the SDK's heartbeat)."""

    leases: list[LeaseRef] = Field(max_length=10_000)
    lease_s: Annotated[float, Field(gt=0, le=86_400)] | None = None


class OutcomeBody(_Strict):
    """How one attempt ended, as the SDK reports it in batches."""

    job_id: JobId
    lease: str = Field(min_length=1, max_length=200)
    status: Literal[Status.COMPLETE, Status.FAILED, Status.ABORTED, Status.QUEUED]
    function: str = Field("unknown", max_length=200, description="For metrics labels.")
    result: Any = None
    error: ErrorBody | None = None
    delay_s: Seconds = 0
    run_s: Seconds | None = None


class SettleRequest(_Strict):
    """Many outcomes in one request."""

    outcomes: list[OutcomeBody] = Field(max_length=10_000)


class AbortRequest(_Strict):
    """Why the job is aborted."""

    error: str = Field("aborted", max_length=10_000)
