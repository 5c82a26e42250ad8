"""Backends are chosen by URL scheme and imported lazily (each may need its own driver)."""

import importlib
import re
from urllib.parse import urlsplit

from jobwire.backends.base import Backend

# scheme -> (module, class, pip extra that brings its driver)
_BACKENDS: dict[str, tuple[str, str, str]] = {
    "redis": ("jobwire.backends.redis", "RedisBackend", "redis"),
    "rediss": ("jobwire.backends.redis", "RedisBackend", "redis"),
    "redis+cluster": ("jobwire.backends.redis", "RedisBackend", "redis"),
    "rediss+cluster": ("jobwire.backends.redis", "RedisBackend", "redis"),
    "postgres": ("jobwire.backends.postgres", "PostgresBackend", "postgres"),
    "postgresql": ("jobwire.backends.postgres", "PostgresBackend", "postgres"),
    "postgresql+asyncpg": ("jobwire.backends.postgres", "PostgresBackend", "postgres"),
    "sqlite": ("jobwire.backends.sqlite", "SqliteBackend", "sqlite"),
    "http": ("jobwire.backends.remote.http", "HttpBackend", "http"),
    "https": ("jobwire.backends.remote.http", "HttpBackend", "http"),
    "grpc": ("jobwire.backends.remote.grpc", "GrpcBackend", "grpc"),
    "grpcs": ("jobwire.backends.remote.grpc", "GrpcBackend", "grpc"),
}


# "://user:secret@" anywhere in the text: the URL's own and any URL in its options
_USERINFO_SECRET = re.compile(r"(://[^:/@?#&]*):[^@/?#&]*@")


def redact_url(url: str) -> str:
    """``url`` without passwords or tokens (also those of URLs in its query, such as
    PostgreSQL's ``listen_url``), for logs and error messages."""
    return _USERINFO_SECRET.sub(r"\1:***@", url)


def backend_from_url(url: str, queue_name: str, *, lease_s: float) -> Backend:
    """Create the backend for ``url``.

    Raises:
        ValueError: The scheme is not supported.
        ImportError: The backend's driver is not installed (names the extra).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _BACKENDS:
        supported = ", ".join(f"{name}://" for name in sorted(_BACKENDS))
        raise ValueError(
            f"unsupported queue URL scheme {scheme!r} in {redact_url(url)!r}; "
            f"use one of: {supported}"
        )
    module_name, class_name, extra = _BACKENDS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"{scheme}:// needs `pip install 'jobwire[{extra}]'` ({exc})") from exc
    backend: Backend = getattr(module, class_name)(url, queue_name, lease_s=lease_s)
    return backend
