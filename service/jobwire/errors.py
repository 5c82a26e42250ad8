"""The one exception tree of Jobwire.

Every error carries a stable ``code``, and the HTTP status and gRPC status code (by name)
a network edge answers with, so that the REST and gRPC layers translate errors once.
"""

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from jobwire.job import Job


class JobwireError(Exception):
    """Base class of every error Jobwire raises on purpose."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    grpc_status: ClassVar[str] = "INTERNAL"


class JobNotFound(JobwireError):
    """No job with that id exists (never did, or its ttl ran out)."""

    code = "not_found"
    http_status = 404
    grpc_status = "NOT_FOUND"


class InvalidJobState(JobwireError):
    """The job is not in a status that allows the requested transition."""

    code = "invalid_state"
    http_status = 409
    grpc_status = "FAILED_PRECONDITION"


class StaleLease(JobwireError):
    """The lease token does not own the job's current attempt.

    The job was re-leased after its worker went silent (or already finished), so the
    late worker's heartbeat or result is refused rather than overwriting a newer attempt.
    """

    code = "stale_lease"
    http_status = 409
    grpc_status = "FAILED_PRECONDITION"


class InvalidRequest(JobwireError, ValueError):
    """The request is malformed or an option is invalid."""

    code = "invalid_request"
    http_status = 400
    grpc_status = "INVALID_ARGUMENT"


class PayloadTooLarge(JobwireError):
    """The request body is over the service's limit."""

    code = "payload_too_large"
    http_status = 413
    grpc_status = "RESOURCE_EXHAUSTED"


class Unauthenticated(JobwireError):
    """No token, or one the service does not know."""

    code = "unauthenticated"
    http_status = 401
    grpc_status = "UNAUTHENTICATED"


class Forbidden(JobwireError):
    """The token's role does not allow this request."""

    code = "forbidden"
    http_status = 403
    grpc_status = "PERMISSION_DENIED"


class Unavailable(JobwireError):
    """The store cannot be reached right now; the request may be retried."""

    code = "unavailable"
    http_status = 503
    grpc_status = "UNAVAILABLE"


class JobFailed(JobwireError):
    """Raised by ``Queue.apply`` when the job ended ``failed``.

    Attributes:
        job: The finished job; ``job.error`` holds the remote exception.
    """

    code = "job_failed"
    http_status = 200

    def __init__(self, job: "Job") -> None:
        self.job = job
        error = job.error
        detail = f"{error.type}: {error.message}" if error else "unknown error"
        super().__init__(f"job {job.id} ({job.function}) failed: {detail}")


class JobAborted(JobwireError):
    """Raised by ``Queue.apply`` when the job ended ``aborted``.

    Attributes:
        job: The aborted job; ``job.error`` holds the abort reason.
    """

    code = "job_aborted"
    http_status = 200

    def __init__(self, job: "Job") -> None:
        self.job = job
        reason = job.error.message if job.error else "aborted"
        super().__init__(f"job {job.id} ({job.function}) aborted: {reason}")
