"""Service configuration: flags and ``JOBWIRE_*`` environment variables, checked at start."""

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobwire.server.auth import Role, parse_tokens
from jobwire.server.metrics import JOB_SECONDS_BUCKETS

DEFAULT_BACKEND = "sqlite:///jobwire.db"  # embedded: works with nothing else running


class Settings(BaseSettings):
    """Everything ``jobwire serve`` can be told; each field is also ``JOBWIRE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="JOBWIRE_", extra="ignore")

    backend: str = Field(DEFAULT_BACKEND, description="URL of the store the service owns.")
    host: str = Field("127.0.0.1", description="Address to bind.")
    http_port: int = Field(8080, ge=0, le=65535, description="REST port (0: any free port).")
    grpc_port: int = Field(
        50051, ge=0, le=65535, description="gRPC port on the same host (0: no gRPC server)."
    )
    tokens: str = Field("", description="Bearer tokens with roles: 'tokA:admin,tokB:worker'.")
    tokens_file: Path | None = Field(None, description="File of 'token:role' lines.")
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
