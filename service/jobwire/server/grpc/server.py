"""``create_grpc_server``: the gRPC half of the service, on the REST app's ServiceCore.

One grpc.aio server in the same event loop as uvicorn, sharing the backend and its
connection pool: ``jobwire.v1.JobService``, ``QueueService`` and ``WorkerService`` behind
the edge interceptor (tokens, errors, metrics), ``grpc.health.v1.Health`` (SERVING while the
store answers) and server reflection. TLS when the settings have a certificate.
"""

import asyncio
import contextlib
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jobwire.server.auth import Authenticator
from jobwire.server.core import ServiceCore
from jobwire.server.grpc.edge import EdgeInterceptor
from jobwire.server.grpc.jobs import JobServicer
from jobwire.server.grpc.queues import QueueServicer
from jobwire.server.grpc.session import WorkHub
from jobwire.server.grpc.work import WorkerServicer
from jobwire.server.settings import Settings
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc

logger = logging.getLogger("jobwire.server.grpc")
SERVICES = tuple(s.full_name for s in pb.DESCRIPTOR.services_by_name.values())
READY_EVERY_S = 2.0  # how often health follows the store's reachability
READY_TIMEOUT_S = 2.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GrpcServer:
    """The gRPC server of one service process.

    Args:
        settings: The service's settings (port, TLS, tokens).
        core: The service's operations, shared with the REST app.
    """

    def __init__(self, settings: Settings, core: ServiceCore) -> None:
        self.settings = settings
        self.core = core
        self.hub = WorkHub(core)
        self.health = health.aio.HealthServicer()
        self.port = 0
        auth = Authenticator(settings.token_roles())
        self._server = grpc.aio.server(
            interceptors=[EdgeInterceptor(auth, core.metrics, core.stopping)],
            options=[
                ("grpc.max_receive_message_length", settings.max_body_bytes),
                # a port another process serves is an error, not shared (SO_REUSEPORT)
                ("grpc.so_reuseport", 0),
            ],
        )
        pb_grpc.add_JobServiceServicer_to_server(JobServicer(core), self._server)
        pb_grpc.add_QueueServiceServicer_to_server(QueueServicer(core), self._server)
        pb_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(core, self.hub), self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        self._ready_task: asyncio.Task[None] | None = None
        self._stopped: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind and serve; returns the bound port.

        Raises:
            RuntimeError: The port could not be bound.
        """
        address = _address(self.settings.host, self.settings.grpc_port)
        try:
            if self.settings.tls_cert is not None and self.settings.tls_key is not None:
                key, cert = self.settings.tls_key.read_bytes(), self.settings.tls_cert.read_bytes()
                credentials = grpc.ssl_server_credentials([(key, cert)])
                self.port = self._server.add_secure_port(address, credentials)
            else:
                self.port = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot serve gRPC on {address}: {exc}") from None
        await self._server.start()
        self._ready_task = asyncio.create_task(self._follow_readiness(), name="jobwire-health")
        logger.info("serving gRPC on %s%s", address, " (TLS)" if self.settings.tls_cert else "")
        return self.port

    async def stop(self, grace_s: float) -> None:
        """Stop gracefully; safe to call more than once.

        Health turns NOT_SERVING, waits and watches end, every Work stream is told to
        drain (hand back unstarted jobs, report running ones), then the server waits up
        to ``grace_s`` for calls to finish and cancels the rest.
        """
        if self._stopped is None:
            self._stopped = asyncio.create_task(self._stop(grace_s))
        await asyncio.shield(self._stopped)

    async def _stop(self, grace_s: float) -> None:
        self.core.stopping.set()
        if self._ready_task is not None:
            self._ready_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ready_task
        await self.health.enter_graceful_shutdown()
        self.hub.drain(grace_s)
        await self._server.stop(grace_s)
        logger.info("gRPC server stopped")

    async def _follow_readiness(self) -> None:
        serving: bool | None = None
        while True:
            try:
                async with asyncio.timeout(READY_TIMEOUT_S):
                    await self.core.ping()
                ready = True
            except Exception as exc:
                if serving is not False:
                    logger.warning("store unreachable (%s): health NOT_SERVING", exc)
                ready = False
            if ready != serving:
                serving = ready
                for service in ("", *SERVICES):
                    await self.health.set(service, SERVING if ready else NOT_SERVING)
            await asyncio.sleep(READY_EVERY_S)


def create_grpc_server(settings: Settings, core: ServiceCore) -> GrpcServer:
    """The gRPC server for ``settings`` over ``core`` (not yet serving: ``start()``)."""
    return GrpcServer(settings, core)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
