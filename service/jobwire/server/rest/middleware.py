"""ASGI middleware of the REST app: the body size limit (413, enforced before the body is
parsed) and request metrics by route template."""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobwire.errors import PayloadTooLarge
from jobwire.server.metrics import Metrics
from jobwire.server.rest.errors import error_response


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: at once by Content-Length, else while reading
    (a body without Content-Length is read here, up to the limit, and replayed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) <= self.max_bytes:
                await self.app(scope, receive, send)
                return
            response = error_response(413, PayloadTooLarge.code, self._message())
            await response(scope, receive, send)
            return
        body = await self._read_limited(receive)
        if body is None:
            response = error_response(413, PayloadTooLarge.code, self._message())
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read_limited(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` once it goes over the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _message(self) -> str:
        return f"request body over {self.max_bytes} bytes"


class HttpMetricsMiddleware:
    """Counts requests and their latency by route template (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status[0])).inc()
            self.metrics.latency.labels(scope["method"], route).observe(
                time.perf_counter() - started
            )
