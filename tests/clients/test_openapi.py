"""clients/openapi.json is the service's OpenAPI document, as `make openapi` writes it."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

CLIENTS = Path(__file__).resolve().parents[2] / "clients"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_openapi", CLIENTS / "generate_openapi.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_openapi_document_is_up_to_date() -> None:
    committed = (CLIENTS / "openapi.json").read_text(encoding="utf-8")
    assert committed == _generator().render(), (
        "clients/openapi.json is out of date: run `make openapi` and commit it"
    )


def test_document_covers_every_route_the_clients_use() -> None:
    paths = json.loads((CLIENTS / "openapi.json").read_text(encoding="utf-8"))["paths"]
    assert set(paths) >= {
        "/v1/queues/{queue}/jobs",
        "/v1/queues/{queue}/jobs/batch",
        "/v1/queues/{queue}/jobs/apply",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/abort",
        "/v1/jobs/{job_id}/retry",
        "/v1/jobs/{job_id}/heartbeat",
        "/v1/jobs/{job_id}/complete",
        "/v1/jobs/{job_id}/fail",
        "/v1/queues",
        "/v1/queues/{queue}",
        "/v1/queues/{queue}/leases",
        "/v1/queues/{queue}/leases/renew",
        "/v1/queues/{queue}/leases/settle",
        "/v1/queues/{queue}/sweep",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    assert set(paths["/v1/jobs/{job_id}"]) == {"get", "delete"}


def test_check_mode_flags_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generator = _generator()
    stale = tmp_path / "openapi.json"
    stale.write_text(generator.render().replace('"Jobwire"', '"Jobwire (old)"'), encoding="utf-8")
    monkeypatch.setattr(generator, "TARGET", stale)
    assert generator.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert generator.main([]) == 0  # rewrites it
    assert generator.main(["--check"]) == 0
