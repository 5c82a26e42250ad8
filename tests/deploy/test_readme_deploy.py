"""README's "Deploy on Kubernetes" works as written: each helm command renders (values
checked by the schema, manifests by Kubernetes' schemas), the worker Dockerfile lints."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from chart_render import CRD_KINDS, KUBE_VERSIONS, ROOT, container_env, containers, render

SECTION = "## Deploy on Kubernetes"


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def _blocks(language: str) -> list[tuple[str, str]]:
    """(marker comment right above, body) of each fenced block in that language."""
    pattern = rf"(?:<!-- (?P<marker>[^>]*) -->\n)?```{language}\n(?P<body>.*?)```"
    return [(m["marker"] or "", m["body"]) for m in re.finditer(pattern, _section(), re.S)]


def _values_files() -> dict[str, dict[str, Any]]:
    files = {}
    for marker, body in _blocks("yaml"):
        if marker.startswith("helm-values: "):
            files[marker.removeprefix("helm-values: ")] = yaml.safe_load(body)
    return files


def _commands(program: str) -> list[list[str]]:
    """Each `program ...` command of the section's shell blocks, split as the shell would."""
    commands = []
    for _, body in _blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            if line.startswith(f"{program} "):
                commands.append(shlex.split(line))
    return commands


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of values: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _releases() -> list[tuple[str, str, dict[str, Any]]]:
    """(command, release name, values) of each helm install/upgrade, upgrades with
    --reuse-values applied on top of the release's values so far."""
    files = _values_files()
    releases: list[tuple[str, str, dict[str, Any]]] = []
    current: dict[str, dict[str, Any]] = {}
    for argv in _commands("helm"):
        verb, release, chart, *options = argv[1:]
        assert verb in ("install", "upgrade"), argv
        assert chart == "./helm/jobwire", argv
        values: dict[str, Any] = current.get(release, {}) if "--reuse-values" in options else {}
        for flag, argument in zip(options, [*options[1:], ""], strict=True):
            if flag == "--set":
                values = _merge(values, helm.parse_set_string(argument))
            elif flag == "-f":
                assert argument in files, f"{argument}: no <!-- helm-values: --> block"
                values = _merge(values, files[argument])
        current[release] = values
        releases.append((shlex.join(argv), release, values))
    return releases


def test_the_section_has_the_common_setups() -> None:
    releases = _releases()
    assert len(releases) >= 4
    values = [v for _, _, v in releases]
    assert any(v.get("redis", {}).get("enabled", True) for v in values)  # bundled Redis
    assert any(v.get("backend", {}).get("existingSecret") for v in values)  # external store
    assert any(v.get("workers") for v in values)
    assert any(w.get("keda", {}).get("enabled") for v in values for w in v.get("workers", []))
    assert any(v.get("autoscaling", {}).get("enabled") for v in values)


@pytest.mark.parametrize(
    ("command", "release", "values"), _releases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_each_helm_command_renders_valid_manifests(
    command: str, release: str, values: dict[str, Any]
) -> None:
    rendered = render(values, name=release)
    for obj in rendered.objects:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
    image = containers(rendered.get("Deployment", release))[0]["image"]
    assert image.startswith("registry.example.com/jobwire:"), command


def test_the_secret_the_readme_creates_is_the_one_the_chart_reads() -> None:
    (create,) = [c for c in _commands("kubectl") if c[1:4] == ["-n", "jobwire", "create"]]
    secret = create[create.index("generic") + 1]
    key = next(a for a in create if a.startswith("--from-literal=")).split("=")[1]
    (command, release, values) = next(r for r in _releases() if "existingSecret" in r[0])
    rendered = render(values, name=release)
    (server,) = containers(rendered.get("Deployment", release))
    (backend,) = [v for v in server["env"] if v["name"] == "JOBWIRE_BACKEND"]
    assert backend["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}, command


def test_worker_groups_get_the_service_url() -> None:
    (command, release, values) = next(r for r in _releases() if "workers.yaml" in r[0])
    rendered = render(values, name=release)
    for worker in values["workers"]:
        deployment = rendered.get("Deployment", f"{release}-worker-{worker['name']}")
        env = container_env(rendered, containers(deployment)[0])
        assert env["JOBWIRE_URL"] == f"grpc://{release}:50051", command  # the Work stream


def test_queue_limits_reach_the_service() -> None:
    (command, release, values) = next(r for r in _releases() if "queues.yaml" in r[0])
    config = render(values, name=release).get("ConfigMap", release)["data"]  # the service's
    assert json.loads(config["JOBWIRE_QUEUES"]) == _values_files()["queues.yaml"]["queues"], command


def test_the_worker_dockerfile_lints_clean_and_runs_as_the_image_user(tmp_path: Path) -> None:
    (body,) = [body for marker, body in _blocks("dockerfile") if marker == "worker-dockerfile"]
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(body)
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable))
    assert hadolint
    done = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stdout
    users = re.findall(r"^USER (.+)$", body, re.M)
    assert users[-1] == "10001:10001"  # the chart's runAsUser
    assert re.search(r'^CMD \["jobwire", "worker", ', body, re.M)


def test_the_tasks_example_is_python() -> None:
    (body,) = [body for _, body in _blocks("python")]
    compile(body, "README tasks example", "exec")
    assert 'os.environ["JOBWIRE_URL"]' in body
