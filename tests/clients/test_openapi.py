"""clients/openapi.json is the service's OpenAPI document, as `make openapi` writes it."""

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
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


def _document() -> dict[str, Any]:
    return json.loads((CLIENTS / "openapi.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_every_operation_is_named_typed_and_declares_its_errors() -> None:
    document = _document()
    assert document["openapi"].startswith("3.1")
    names = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names.add(operation["operationId"])
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status, response in responses.items():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if status.startswith(("4", "5")):
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
                elif "application/json" in content:
                    assert "$ref" in schema, (method, path, status)  # a model, not a string
            if path.startswith("/v1/"):
                assert {"400", "401", "403", "503"} <= set(responses), (method, path)
    assert {"enqueueJob", "getJob", "abortJob", "retryJob", "deleteJob", "leaseJobs",
            "heartbeatJob", "completeJob", "failJob", "watchJob"} <= names  # fmt: skip
    paths = document["paths"]
    assert {"200", "201"} <= set(paths["/v1/queues/{queue}/jobs"]["post"]["responses"])
    assert {"200", "202"} <= set(paths["/v1/queues/{queue}/jobs/apply"]["post"]["responses"])
    assert "409" in paths["/v1/jobs/{job_id}/complete"]["post"]["responses"]
    events = paths["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert set(events) == {"text/event-stream"}
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    worker = schemas["WorkerSeen"]["properties"]
    assert set(worker) == {"id", "seen", "functions", "concurrency", "running", "host", "pid",
                           "transport"}  # fmt: skip


def test_docs_and_redoc_load_their_assets_from_the_service(service_url: str) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(service_url + page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources, html
        for source in sources:
            assert source.startswith("/"), f"{page} loads {source} from elsewhere"
            asset = httpx.get(service_url + source)
            assert asset.status_code == 200 and len(asset.content) > 1000, source
