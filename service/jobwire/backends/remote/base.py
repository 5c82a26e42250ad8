"""What the network clients (http, grpc) read from a service URL the same way."""

import os
from urllib.parse import SplitResult


def bracketed_host(parts: SplitResult) -> str:
    """The URL's host, bracketed if it is an IPv6 address (``localhost`` if absent)."""
    host = parts.hostname or "localhost"
    return f"[{host}]" if ":" in host else host


def bearer_token(parts: SplitResult) -> str | None:
    """The token: the URL's password (``scheme://:TOKEN@host``), else ``$JOBWIRE_TOKEN``."""
    return parts.password or os.environ.get("JOBWIRE_TOKEN")
