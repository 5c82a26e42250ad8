"""The gRPC edge, as one interceptor: bearer tokens and roles, error translation, metrics.

Every call's ``authorization: Bearer <token>`` metadata is checked against the same
tokens and roles as REST (UNAUTHENTICATED / PERMISSION_DENIED); health checks and
reflection are open, as ``/healthz`` and ``/openapi.json`` are. A call whose permission
depends on what it asks (``BulkJobs``: its action) is checked again once its request is
read. Handlers raise
``JobwireError``s (or ``ValueError`` for bad input); the edge turns them into statuses
once (``grpc_errors``), and counts every call by method and code. When the service
starts stopping, response streams (but ``Work``, which drains) end with UNAVAILABLE.
"""

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from jobwire.errors import JobwireError
from jobwire.server.auth import BULK_PERMISSIONS, Authenticator, Permission
from jobwire.server.grpc.errors import ServiceStopping, abort_with
from jobwire.server.metrics import Metrics
from jobwire.v1.codec import BULK_ACTION_FROM_PB

_JOBS = "/jobwire.v1.JobService/"
_WORK = "/jobwire.v1.WorkerService/"
_QUEUES = "/jobwire.v1.QueueService/"
PERMISSIONS: dict[str, Permission] = {
    **{_JOBS + m: Permission.ENQUEUE for m in ("Enqueue", "EnqueueBatch", "Apply")},
    **{
        _JOBS + m: Permission.READ
        for m in ("GetJob", "WatchJob", "ListJobs", "GetQueue", "ListQueues")
    },
    **{_JOBS + m: Permission.CONTROL for m in ("AbortJob", "RetryJob")},
    _JOBS + "DeleteJob": Permission.DELETE,
    **{
        _QUEUES + m: Permission.CONFIGURE for m in ("PauseQueue", "ResumeQueue", "PutQueueSettings")
    },
    _QUEUES + "GetQueueSettings": Permission.READ,
    _QUEUES + "BulkJobs": Permission.CONTROL,  # the least any action needs; then its own
}


def _bulk_permission(request: Any) -> Permission | None:
    action = BULK_ACTION_FROM_PB.get(request.action)
    return BULK_PERMISSIONS[action] if action is not None else None  # none: refused later


# Calls that may need more, depending on the request: what a request needs.
REQUEST_PERMISSIONS: dict[str, Callable[[Any], Permission | None]] = {
    _QUEUES + "BulkJobs": _bulk_permission,
}
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DRAINING_STREAMS = frozenset({_WORK + "Work"})  # not cut at stop: they drain
REFUSAL_READ_S = 0.1

if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler  # generic only in the type stubs
Context = grpc.aio.ServicerContext[Any, Any]
Guard = Callable[[Any], None]  # raises unless the caller may make this request


def permission_for(method: str) -> Permission | None:
    """What a call of ``method`` needs (``None``: open); unknown methods need admin."""
    if method.startswith(OPEN_PREFIXES):
        return None
    if method.startswith(_WORK):
        return Permission.WORK
    return PERMISSIONS.get(method, Permission.DELETE)


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates, translates errors and records metrics for every call.

    Args:
        auth: The service's tokens and roles.
        metrics: Where calls are counted.
        stopping: Set when the service starts stopping.
    """

    def __init__(self, auth: Authenticator, metrics: Metrics, stopping: asyncio.Event) -> None:
        self._auth = auth
        self._metrics = metrics
        self._stopping = stopping

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        refusal: JobwireError | None = None
        guard: Guard | None = None
        permission = permission_for(method)
        if permission is not None and self._auth.enabled:
            header = _header(handler_call_details.invocation_metadata, "authorization")
            try:
                self._auth.check(header, permission)
            except JobwireError as exc:
                refusal = exc
            guard = self._guard(method, header)
        stopping = None if method in DRAINING_STREAMS else self._stopping
        recorder = _Recorder(self._metrics, method.rpartition("/")[2], stopping)
        return _wrap(handler, recorder, refusal, guard)

    def _guard(self, method: str, header: str | None) -> Guard | None:
        """The check of a request ``method`` needs beyond its permission (``None``: none)."""
        needs = REQUEST_PERMISSIONS.get(method)
        if needs is None:
            return None

        def check(request: Any) -> None:
            permission = needs(request)
            if permission is not None:
                self._auth.check(header, permission)

        return check


class _Recorder:
    """Runs one behaviour: refuses it, or translates what it raises; counts the call."""

    def __init__(self, metrics: Metrics, method: str, stopping: asyncio.Event | None) -> None:
        self.metrics = metrics
        self.method = method
        self.stopping = stopping  # None: the call is not cut when the service stops
        self.request_streaming = False

    async def fail(self, context: Context, exc: BaseException, started: float) -> None:
        """Record and re-raise ``exc`` as the call's status."""
        if isinstance(exc, asyncio.CancelledError):
            self.done(started, "CANCELLED")
            raise exc
        if isinstance(exc, grpc.aio.AbortError) or not isinstance(exc, Exception):
            code = context.code()
            self.done(started, code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN")
            raise exc
        try:
            await abort_with(context, exc)
        finally:
            code = context.code()
            self.done(started, code.name if isinstance(code, grpc.StatusCode) else "INTERNAL")

    def done(self, started: float, code: str) -> None:
        """Count the call."""
        self.metrics.grpc_call(self.method, code, time.perf_counter() - started)


def _wrap(
    handler: Handler, recorder: _Recorder, refusal: JobwireError | None, guard: Guard | None
) -> Handler:
    """A handler of the same kind whose behaviour goes through ``recorder``."""
    kinds = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    )
    for attribute, make in kinds:
        behaviour = getattr(handler, attribute)
        if behaviour is not None:
            if not handler.response_streaming:
                recorder.stopping = None
            recorder.request_streaming = handler.request_streaming
            wrapped: Callable[[Any, Context], Any]
            if inspect.isasyncgenfunction(behaviour):
                wrapped = _streaming(behaviour, recorder, refusal)
            else:
                wrapped = _unary(behaviour, recorder, refusal, guard)
            return make(
                wrapped,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def _unary(
    behaviour: Callable[..., Any],
    recorder: _Recorder,
    refusal: JobwireError | None,
    guard: Guard | None = None,
) -> Callable[[Any, Context], Awaitable[Any]]:
    async def run(request: Any, context: Context) -> Any:
        started = time.perf_counter()
        try:
            if refusal is not None:
                await _refuse(refusal, request, recorder)
            if guard is not None:
                guard(request)
            response = await _unless_stopping(behaviour(request, context), recorder.stopping)
        except BaseException as exc:
            await recorder.fail(context, exc, started)
            raise
        code = context.code()
        recorder.done(started, code.name if isinstance(code, grpc.StatusCode) else "OK")
        return response

    return run


def _streaming(
    behaviour: Callable[..., Any], recorder: _Recorder, refusal: JobwireError | None
) -> Callable[[Any, Context], AsyncIterator[Any]]:
    async def run(request: Any, context: Context) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            if refusal is not None:
                await _refuse(refusal, request, recorder)
            async for response in _until_stopping(behaviour(request, context), recorder.stopping):
                yield response
        except BaseException as exc:
            await recorder.fail(context, exc, started)
            raise
        recorder.done(started, "OK")

    return run


async def _refuse(refusal: JobwireError, request: Any, recorder: _Recorder) -> None:
    """Raise ``refusal``; on a client stream, only once the client's first writes are in.

    A grpc-python client whose write crosses the server's status reports INTERNAL
    instead of that status; reading what it sends for a moment first avoids the race.
    """
    if recorder.request_streaming:
        with contextlib.suppress(Exception):  # TimeoutError, or the client went away
            async with asyncio.timeout(REFUSAL_READ_S):
                async for _ in request:
                    pass
    raise refusal


async def _unless_stopping(work: Awaitable[Any], stopping: asyncio.Event | None) -> Any:
    """Await ``work``; if the service starts stopping first, cancel it.

    Raises:
        ServiceStopping: It was cut.
    """
    if stopping is None:
        return await work
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled():
        raise ServiceStopping("the service is shutting down; reconnect")
    return task.result()


async def _until_stopping(
    responses: AsyncIterator[Any], stopping: asyncio.Event | None
) -> AsyncIterator[Any]:
    """The responses until the service starts stopping.

    Raises:
        ServiceStopping: It was cut.
    """
    iterator = aiter(responses)
    while True:
        try:
            response = await _unless_stopping(anext(iterator), stopping)
        except StopAsyncIteration:
            return
        yield response


def _header(metadata: Any, name: str) -> str | None:
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None
