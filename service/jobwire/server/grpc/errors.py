"""One error translation at the gRPC edge: Jobwire's errors to status codes.

``server.errors.as_jobwire_error`` maps whatever a call raised to a ``JobwireError``
(bad input, an unreachable store included), which names its gRPC status; the edge answers
with it,
the message as details, and Jobwire's own code in the trailing metadata
``jobwire-error`` (two errors share FAILED_PRECONDITION: ``stale_lease`` and
``invalid_state``). Anything unexpected is logged and answered INTERNAL without
internals.
"""

import logging

import grpc

from jobwire.errors import JobwireError
from jobwire.server.errors import as_jobwire_error
from jobwire.v1.codec import ERROR_CODE_KEY

logger = logging.getLogger("jobwire.server")


def translate(exc: Exception) -> tuple[grpc.StatusCode, str, str]:
    """The status code, Jobwire error code and message to answer ``exc`` with."""
    error = as_jobwire_error(exc)
    if error is None:
        return grpc.StatusCode.INTERNAL, JobwireError.code, "internal error; see the service log"
    return grpc.StatusCode[error.grpc_status], error.code, str(error)


async def abort_with(context: grpc.aio.ServicerContext[object, object], exc: Exception) -> None:
    """End the call with the status ``exc`` translates to (raises ``grpc.aio.AbortError``)."""
    status, code, message = translate(exc)
    if status == grpc.StatusCode.INTERNAL:
        logger.error("unhandled error in a gRPC call", exc_info=exc)
    await context.abort(status, message, trailing_metadata=((ERROR_CODE_KEY, code),))


class ServiceStopping(JobwireError):
    """The service is shutting down: reconnect (to another replica, or after restart)."""

    code = "shutting_down"
    http_status = 503
    grpc_status = "UNAVAILABLE"
