"""The postgres store."""

from jobwire.backends.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
