"""The Jobwire chart rendered by Helm's own template engine, and ways to read the result.

Helm comes from the `helm-python-sdk` package (Helm's Go SDK behind a C ABI): no helm
binary, no cluster, no network. `lookup` finds nothing when rendering offline, so
generated tokens are new on every render, as on a first install.
"""

import base64
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "jobwire"
RELEASE = "demo"
NAMESPACE = "jobs"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a recent one.
KUBE_VERSIONS = ("1.27.0", "1.33.0")
# Kinds whose schema comes with their operator's CRDs, not with Kubernetes.
CRD_KINDS = {"ServiceMonitor", "ScaledObject"}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    # PostgreSQL run elsewhere, its URL in a Secret the user made: no bundled Redis.
    "external-postgres": {
        "redis": {"enabled": False},
        "backend": {"existingSecret": {"name": "jobwire-db", "key": "postgres-url"}},
        "replicaCount": 3,
    },
    # REST only: no gRPC server, workers pull over http://.
    "rest-only": {
        "grpc": {"enabled": False},
        "workers": [{"name": "emails", "command": ["jobwire", "worker", "app.tasks.settings"]}],
    },
    # Every optional part switched on.
    "everything": {
        "redis": {"enabled": True, "persistence": {"enabled": True, "size": "2Gi"}},
        "grpc": {"enabled": True},
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "networkPolicy": {
            "enabled": True,
            "ingressFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
            ],
        },
        "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Jobwire"}},
        "queues": {
            "emails": {
                "max_active": 20,
                "max_active_per_key": 2,
                "rate": {"limit": 100, "period_s": 1},
                "rate_per_key": {"limit": 5, "period_s": 0.5},
                "functions": {"send_welcome_email": {"max_active": 5, "rate": {"limit": 50}}},
            },
            "reports": {"paused": True},
        },
        "workers": [
            {
                "name": "emails",
                "command": ["jobwire", "worker", "app.tasks.settings", "--concurrency", "20"],
                "env": [{"name": "SMTP_HOST", "value": "smtp.example.com"}],
                "keda": {"enabled": True, "queue": "emails", "threshold": 50},
            },
            {
                "name": "exports",
                "image": {"repository": "registry.example.com/acme-tasks", "tag": "1.4.2"},
                "command": ["jobwire", "worker", "app.exports.settings"],
                "replicas": 2,
                "autoscaling": {"enabled": True, "maxReplicas": 4},
            },
        ],
    },
}


@dataclass
class Rendered:
    """A rendered release: template files and the Kubernetes objects in them."""

    files: dict[str, str]
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every object of that kind."""
        return [obj for obj in self.objects if obj["kind"] == kind]

    def names(self, kind: str) -> list[str]:
        """The names of the objects of that kind."""
        return [obj["metadata"]["name"] for obj in self.of_kind(kind)]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The object of that kind and name.

        Raises:
            AssertionError: There is none (the message lists what there is).
        """
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise AssertionError(f"no {kind} {name!r}; {kind}s rendered: {self.names(kind)}")

    def secret_data(self, name: str) -> dict[str, str]:
        """A rendered Secret's data, decoded."""
        data = self.get("Secret", name).get("data", {})
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    @property
    def notes(self) -> str:
        """The rendered NOTES.txt."""
        return next(text for path, text in self.files.items() if path.endswith("NOTES.txt"))


def render(values: dict[str, Any], *, name: str = RELEASE) -> Rendered:
    """Render the chart as `helm install NAME --namespace jobs` would (values checked
    against values.schema.json first, as helm does).

    Raises:
        helm_python.HelmValuesError: The values break the schema.
        helm_python.HelmRenderError: A template failed (e.g. a `fail` on bad values).
    """
    with helm.Chart.load(CHART_DIR) as chart:
        files = chart.render(values, name=name, namespace=NAMESPACE, is_install=True)
    objects = [
        obj
        for path, text in sorted(files.items())
        if not path.endswith(".txt")
        for obj in yaml.safe_load_all(text)
        if obj
    ]
    return Rendered(files, objects)


def fullname(name: str = RELEASE) -> str:
    """The resource name prefix the chart uses for a release called ``name``."""
    return name if "jobwire" in name else f"{name}-jobwire"


def package_version() -> str:
    """The jobwire package version (pyproject.toml)."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def chart_metadata() -> dict[str, Any]:
    """Chart.yaml."""
    return dict(yaml.safe_load((CHART_DIR / "Chart.yaml").read_text()))


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a workload's pod template."""
    return list(obj["spec"]["template"]["spec"]["containers"])


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    """The labels of a workload's pod template."""
    return dict(obj["spec"]["template"]["metadata"]["labels"])


def container_env(rendered: Rendered, container: dict[str, Any]) -> dict[str, str]:
    """The environment Kubernetes would give the container: envFrom first, then env
    (which wins), with Secret and ConfigMap references resolved from the render.

    Raises:
        AssertionError: A reference names a Secret, ConfigMap or key not rendered.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(rendered.get("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(rendered.secret_data(source["secretRef"]["name"]))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            data = rendered.secret_data(ref["secretKeyRef"]["name"])
            key = ref["secretKeyRef"]["key"]
        else:
            data = rendered.get("ConfigMap", ref["configMapKeyRef"]["name"])["data"]
            key = ref["configMapKeyRef"]["key"]
        assert key in data, f"{var['name']}: no key {key!r} in {sorted(data)}"
        env[var["name"]] = data[key]
    return env
