"""`jobwire serve` checks its settings at start-up: refusals exit at once, with a reason."""

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from service_fixtures import free_port, start_service, stop_service
from service_helpers import clean_env, read_log, serve_command

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("service-settings")]

REFUSE_DEADLINE_S = 15.0

REFUSED: dict[str, tuple[list[str], dict[str, str], list[str]]] = {
    # name: (serve args, env, words the message must contain)
    "public bind without tokens": (["--host", "0.0.0.0"], {}, ["0.0.0.0", "--insecure"]),
    "unknown role": (
        [],
        {"JOBWIRE_TOKENS": "adm:admin,x:superuser"},
        ["unknown role", "superuser"],
    ),
    "token without role": ([], {"JOBWIRE_TOKENS": "justatoken"}, ["token:role"]),
}


@pytest.fixture(scope="module")
def refusals(redis_url: str) -> dict[str, tuple[int, str, float]]:
    """Run every refused configuration at once: (exit code, stderr, seconds to exit) by case."""
    procs: dict[str, tuple[subprocess.Popen[str], float]] = {}
    for case, (args, env, _) in REFUSED.items():
        proc = subprocess.Popen(
            serve_command("--http-port", str(free_port()), *args),
            env=clean_env(JOBWIRE_BACKEND=redis_url, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs[case] = (proc, time.monotonic())
    results: dict[str, tuple[int, str, float]] = {}
    for case, (proc, started) in procs.items():
        try:
            _, stderr = proc.communicate(timeout=REFUSE_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        results[case] = (proc.returncode, stderr, time.monotonic() - started)
    return results


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_settings_exit_non_zero_with_a_reason(
    refusals: dict[str, tuple[int, str, float]], case: str
) -> None:
    code, message, elapsed = refusals[case]
    assert code != 0, message
    assert code != -9, f"still running after {REFUSE_DEADLINE_S} s: {message}"
    assert elapsed < REFUSE_DEADLINE_S
    for word in REFUSED[case][2]:
        assert word in message, f"{word!r} not in:\n{message}"
    assert "Traceback" not in message, message


def test_insecure_binds_every_interface(redis_url: str) -> None:
    proc, url, log_path = start_service(redis_url, "--host", "0.0.0.0", "--insecure")
    try:
        response = httpx.get(f"{url}/healthz", timeout=5)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        port = url.rsplit(":", 1)[1]
        assert f"0.0.0.0:{port}" in read_log(log_path)
    finally:
        stop_service(proc)


def test_public_bind_with_tokens_starts(redis_url: str) -> None:
    proc, url, log_path = start_service(
        redis_url, "--host", "0.0.0.0", env={"JOBWIRE_TOKENS": "t1:client"}
    )
    try:
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{url}/v1/queues", timeout=5).status_code == 401
        authorized = httpx.get(
            f"{url}/v1/queues", headers={"authorization": "Bearer t1"}, timeout=5
        )
        assert authorized.status_code == 200
        assert "t1" not in read_log(log_path)  # tokens are not logged
    finally:
        stop_service(proc)


def test_queues_given_at_start_are_set_up(redis_url: str, tmp_path: Path) -> None:
    """JOBWIRE_QUEUES_FILE then JOBWIRE_QUEUES (which wins per queue): limits replaced,
    paused as told, and an entry with only ``paused`` keeps the stored limits."""
    suffix = f"{time.time_ns()}"
    emails, reports, audit = f"emails-{suffix}", f"reports-{suffix}", f"audit-{suffix}"
    limits = {"max_active": 5, "rate": {"limit": 100, "period_s": 1.0},
              "functions": {"send": {"max_active": 2}}}  # fmt: skip
    queues_file = tmp_path / "queues.json"
    queues_file.write_text(json.dumps({emails: {"max_active": 1}, reports: {"paused": True}}))
    inline = {emails: limits, audit: {**limits, "paused": False}}
    env = {"JOBWIRE_QUEUES_FILE": str(queues_file), "JOBWIRE_QUEUES": json.dumps(inline)}
    proc, url, _ = start_service(redis_url, env=env)
    try:
        answers = {q: httpx.get(f"{url}/v1/queues/{q}/settings", timeout=5).json()
                   for q in (emails, reports, audit)}  # fmt: skip
        httpx.put(f"{url}/v1/queues/{reports}/settings", json={"max_active": 9}, timeout=5)
    finally:
        stop_service(proc)
    assert answers[emails] == {"queue": emails, "paused": False, "settings": limits}
    assert answers[reports] == {"queue": reports, "paused": True, "settings": {"functions": {}}}
    assert answers[audit] == {"queue": audit, "paused": False, "settings": limits}
    # a restart with only "paused" for reports keeps the limits set through the API
    proc, url, _ = start_service(redis_url, env=env)
    try:
        again = httpx.get(f"{url}/v1/queues/{reports}/settings", timeout=5).json()
    finally:
        stop_service(proc)
    assert again == {
        "queue": reports,
        "paused": True,
        "settings": {"max_active": 9, "functions": {}},
    }
