"""The Jobwire service: one core of operations behind REST (FastAPI) and gRPC (grpc.aio)."""

from jobwire.server.app import create_app
from jobwire.server.settings import Settings

__all__ = ["Settings", "create_app"]
