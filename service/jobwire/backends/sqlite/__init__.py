"""The sqlite store."""

from jobwire.backends.sqlite.backend import SqliteBackend

__all__ = ["SqliteBackend"]
