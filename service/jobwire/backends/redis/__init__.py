"""The redis store."""

from jobwire.backends.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
