"""JSON responses rendered with orjson (fast, and handles enums and floats exactly)."""

from typing import Any

import orjson
from starlette.responses import Response


class JsonResponse(Response):
    """A JSON response body serialized by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
