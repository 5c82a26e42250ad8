"""Service configuration: flags and ``JOBWIRE_*`` environment variables, checked at start."""

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobwire.job import NAME_PATTERN
from jobwire.server.auth import Role, parse_tokens
from jobwire.server.metrics import JOB_SECONDS_BUCKETS
from jobwire.server.schemas import QueueSettingsBody

DEFAULT_BACKEND = "sqlite:///jobwire.db"  # embedded: works with nothing else running
QueueName = Annotated[str, Field(pattern=NAME_PATTERN)]


class QueueSetup(QueueSettingsBody):
    """One queue as the service sets it up at start: its limits (``QueueSettingsBody``'s
    fields) and, optionally, its pause state."""

    paused: bool | None = Field(
        None, description="true: pause it; false: resume it; absent: leave it as stored."
    )

    @property
    def has_limits(self) -> bool:
        """Whether the entry names any limit field (then its limits replace every stored
        one, a null clearing that limit); an entry with only ``paused`` keeps them."""
        return bool(self.model_fields_set - {"paused"})


QUEUE_SETUPS = TypeAdapter(dict[QueueName, QueueSetup])


class Settings(BaseSettings):
    """Everything ``jobwire serve`` can be told; each field is also ``JOBWIRE_<NAME>``.

    ``JOBWIRE_QUEUES`` (and the file ``JOBWIRE_QUEUES_FILE`` names) is a JSON object by
    queue name, applied once at start, e.g.::

        {"emails": {"max_active": 5, "max_active_per_key": 1,
                    "rate": {"limit": 100, "period_s": 1},
                    "rate_per_key": {"limit": 10, "period_s": 1},
                    "functions": {"send": {"max_active": 2,
                                           "rate": {"limit": 50, "period_s": 1}}},
                    "paused": false}}

    Each entry takes the body of ``PUT /v1/queues/{queue}/settings`` plus ``paused``. An
    entry naming any limit field replaces every stored limit of its queue (absent or null:
    no such limit); one with only ``paused`` keeps them. ``paused`` true or false pauses or
    resumes the queue at every start; absent, the stored state stays (a pause set through
    the API survives restarts). Both sources given, ``queues`` wins per queue.
    """

    model_config = SettingsConfigDict(env_prefix="JOBWIRE_", extra="ignore")

    backend: str = Field(DEFAULT_BACKEND, description="URL of the store the service owns.")
    host: str = Field("127.0.0.1", description="Address to bind.")
    http_port: int = Field(8080, ge=0, le=65535, description="REST port (0: any free port).")
    grpc_port: int = Field(
        50051, ge=0, le=65535, description="gRPC port on the same host (0: no gRPC server)."
    )
    tokens: str = Field("", description="Bearer tokens with roles: 'tokA:admin,tokB:worker'.")
    tokens_file: Path | None = Field(None, description="File of 'token:role' lines.")
    queues: dict[QueueName, QueueSetup] = Field(
        default_factory=dict,
        description="Queue limits and pause states applied at start: JSON by queue name.",
    )
    queues_file: Path | None = Field(None, description="A JSON file shaped as ``queues``.")
    insecure: bool = Field(False, description="Allow a non-loopback bind without tokens.")
    metrics_public: bool = Field(True, description="Serve /metrics without a token.")
    tls_cert: Path | None = Field(None, description="TLS certificate (PEM); needs tls_key.")
    tls_key: Path | None = Field(None, description="TLS private key (PEM).")
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest request body (413 above).")
    max_wait_s: float = Field(60.0, gt=0, description="Cap on long-poll waits, in seconds.")
    sweep_interval_s: float = Field(
        1.0, gt=0, description="How often expired leases are reclaimed."
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="Time in-flight requests get on SIGTERM."
    )
    run_seconds_buckets: list[float] = Field(
        list(JOB_SECONDS_BUCKETS),
        min_length=1,
        description="Bucket bounds (s) of jobwire_job_run_seconds, a JSON list.",
    )
    wait_seconds_buckets: list[float] = Field(
        list(JOB_SECONDS_BUCKETS),
        min_length=1,
        description="Bucket bounds (s) of jobwire_job_queue_wait_seconds, a JSON list.",
    )

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.grpc_port and self.grpc_port == self.http_port:
            raise ValueError(f"http_port and grpc_port are both {self.grpc_port}")
        try:
            self.queue_setups()
        except (ValueError, OSError) as exc:
            raise ValueError(f"queues_file {self.queues_file}: {exc}") from None
        if not self.token_roles() and not _is_loopback(self.host) and not self.insecure:
            raise ValueError(
                f"refusing to bind {self.host} without tokens: anyone could run jobs. "
                "Set JOBWIRE_TOKENS / --tokens-file, bind 127.0.0.1, or pass --insecure."
            )
        return self

    def token_roles(self) -> dict[str, Role]:
        """Every configured token with its role (from ``tokens`` and ``tokens_file``)."""
        text = self.tokens
        if self.tokens_file is not None:
            text += "\n" + self.tokens_file.read_text()
        return parse_tokens(text)

    def queue_setups(self) -> dict[str, QueueSetup]:
        """Every queue to set up at start (from ``queues_file``, then ``queues``).

        Raises:
            OSError: The file cannot be read.
            ValueError: It is not JSON of the right shape.
        """
        setups: dict[str, QueueSetup] = {}
        if self.queues_file is not None:
            setups.update(QUEUE_SETUPS.validate_json(self.queues_file.read_bytes()))
        return {**setups, **self.queues}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
