"""Request body size limit (413), enforced before the body is parsed."""

from collections.abc import MutableMapping
from typing import Any

from jobwire.errors import PayloadTooLarge
from jobwire.server.errors import error_response
from jobwire.server.metrics import ASGIApp, Receive, Scope, Send


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: at once by Content-Length, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, PayloadTooLarge.code, self._message())
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise PayloadTooLarge(self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"request body over {self.max_bytes} bytes"
