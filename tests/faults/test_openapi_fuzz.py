"""schemathesis against `/openapi.json` of a real service (Redis and PostgreSQL of the
suite's own): a fixed seed, a few examples per operation and mode, and no answer is a 5xx
(schemathesis's ``not_a_server_error`` check)."""

from typing import Any

import httpx
import pytest
import requests
from fault_helpers import Service, unique_name
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi import from_url

pytestmark = pytest.mark.slow
EXAMPLES = 4  # per operation, generation mode and job (random or real)
SEED = 17


MAX_WAIT_S = 0.2  # long polls (?wait=, a lease's "wait") are cut to this


def _bound_waits(case: Case) -> None:
    """Cut long polls short (apply waits 30 s by default): the fuzz is about answers."""
    if any(param.name == "wait" for param in case.operation.query):
        query = case.query if isinstance(case.query, dict) else {}
        wait = query.get("wait")
        if wait is None or isinstance(wait, int | float):
            case.query = {**query, "wait": min(wait or 0, MAX_WAIT_S)}
    if isinstance(case.body, dict) and isinstance(case.body.get("wait"), int | float):
        case.body["wait"] = min(case.body["wait"], MAX_WAIT_S)


def test_no_generated_request_is_a_server_error(store_service: Service) -> None:
    schema = from_url(f"{store_service.http}/openapi.json")
    queue = unique_name("fuzz")
    real = httpx.post(f"{store_service.http}/v1/queues/{queue}/jobs", json={"function": "f"})
    assert real.status_code == 201, real.text
    server_errors: list[str] = []
    hung: list[str] = []
    cases = 0

    def fuzz(operation: Any, mode: GenerationMode, path: dict[str, Any] | None) -> None:
        @seed(SEED)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy(mode, path_parameters=path))
        def run(case: Case) -> None:
            nonlocal cases
            cases += 1
            _bound_waits(case)
            try:
                case.call_and_validate(checks=[not_a_server_error], timeout=5)
            except (AssertionError, FailureGroup) as failure:
                server_errors.append(f"{case.method} {case.formatted_path}: {failure}"[:2000])
            except requests.Timeout:
                hung.append(case.as_curl_command())

        try:
            run()
        except Unsatisfiable:  # nothing negative to send (an operation without inputs)
            assert mode is GenerationMode.NEGATIVE, operation.label

    for result in schema.get_all_operations():
        operation = result.ok()
        params = {param.name for param in operation.path_parameters}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, None)
            streams = operation.path.endswith("/events")  # stays open while the job runs
            if mode is GenerationMode.POSITIVE and params & {"job_id", "queue"} and not streams:
                known = {"job_id": real.json()["id"], "queue": queue}
                fuzz(operation, mode, {name: known[name] for name in params & set(known)})
    print(f"openapi fuzz {store_service.backend}: {cases} cases, {len(server_errors)} 5xx")
    assert not server_errors, "\n".join(server_errors)
    assert not hung, "\n".join(hung)
