"""One error translation at the gRPC edge: Jobwire's errors to status codes.

Each ``JobwireError`` names its gRPC status (``grpc_status``); the edge answers with it,
the message as details, and Jobwire's own code in the trailing metadata
``jobwire-error`` (two errors share FAILED_PRECONDITION: ``stale_lease`` and
``invalid_state``). Anything unexpected is logged and answered INTERNAL without
internals.
"""

import logging

import grpc
import pydantic

from jobwire.errors import InvalidRequest, JobwireError

ERROR_CODE_KEY = "jobwire-error"
logger = logging.getLogger("jobwire.server")


def translate(exc: Exception) -> tuple[grpc.StatusCode, str, str]:
    """The status code, Jobwire error code and message to answer ``exc`` with."""
    if isinstance(exc, JobwireError):
        return grpc.StatusCode[exc.grpc_status], exc.code, str(exc)
    if isinstance(exc, pydantic.ValidationError):
        return grpc.StatusCode.INVALID_ARGUMENT, InvalidRequest.code, _summary(exc)
    if isinstance(exc, ValueError | TypeError):
        return grpc.StatusCode.INVALID_ARGUMENT, InvalidRequest.code, str(exc)
    return grpc.StatusCode.INTERNAL, JobwireError.code, "internal error; see the service log"


async def abort_with(context: grpc.aio.ServicerContext[object, object], exc: Exception) -> None:
    """End the call with the status ``exc`` translates to (raises ``grpc.aio.AbortError``)."""
    status, code, message = translate(exc)
    if status == grpc.StatusCode.INTERNAL:
        logger.error("unhandled error in a gRPC call", exc_info=exc)
    await context.abort(status, message, trailing_metadata=((ERROR_CODE_KEY, code),))


def _summary(exc: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


class ServiceStopping(JobwireError):
    """The service is shutting down: reconnect (to another replica, or after restart)."""

    code = "shutting_down"
    http_status = 503
    grpc_status = "UNAVAILABLE"
