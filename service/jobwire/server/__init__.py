"""The Jobwire service: REST (and later gRPC) over one backend."""

from jobwire.server.app import create_app
from jobwire.server.settings import Settings

__all__ = ["Settings", "create_app"]
