"""The chart's manifests against Kubernetes' JSON schemas, and its values against its own."""

import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from chart_render import CHART_DIR, CRD_KINDS, KUBE_VERSIONS, VALUE_SETS, render


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(value_set: str, kube_version: str) -> None:
    """Strict: an unknown field is an error, as `kubectl apply --validate=strict` has it.

    ServiceMonitor and ScaledObject are skipped here: their schemas come with the
    prometheus-operator and KEDA CRDs, not with Kubernetes. test_chart_render checks
    their shape (selectors, ports, target, query) instead.
    """
    rendered = render(VALUE_SETS[value_set])
    validated = []
    for obj in rendered.objects:
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.path)
            name = f"{obj['kind']} {obj['metadata']['name']}"
            raise AssertionError(f"{name}: {where}: {error.message}") from None
        validated.append(obj["kind"])
    assert {"Deployment", "Service", "Secret", "ConfigMap"} <= set(validated)


def test_schema_validation_catches_a_bad_manifest() -> None:
    """The validator itself is not a no-op: a wrong field fails it."""
    deployment = next(o for o in render({}).objects if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_values_schema_accepts_the_value_sets(value_set: str) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(chart.merge_values(VALUE_SETS[value_set]))


WORKER = {"name": "emails", "command": ["jobwire", "worker", "app.tasks.settings"]}
BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "negative-replicas": ({"replicaCount": -1}, "/replicaCount"),
    "unknown-pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "redis-pull-policy": ({"redis": {"image": {"pullPolicy": "always"}}}, "pullPolicy"),
    "misspelt-key": ({"replicaCuont": 2}, "replicaCuont"),
    "misspelt-nested-key": ({"autoscaling": {"enable": True}}, "enable"),
    "port-out-of-range": ({"service": {"port": 70000}}, "/service/port"),
    "log-level": ({"config": {"logLevel": "verbose"}}, "/config/logLevel"),
    "token-with-comma": ({"auth": {"adminToken": "a,b"}}, "/auth/adminToken"),
    "backend-scheme": ({"backend": {"url": "mysql://db/jobs"}}, "/backend/url"),
    # The chart gives the service no volume for an SQLite file.
    "backend-sqlite": ({"backend": {"url": "sqlite:///tmp/jobs.db"}}, "/backend/url"),
    "worker-without-command": ({"workers": [{"name": "emails"}]}, "command"),
    "worker-bad-name": ({"workers": [{**WORKER, "name": "Emails_1"}]}, "/workers/0/name"),
    "worker-negative-replicas": ({"workers": [{**WORKER, "replicas": -2}]}, "replicas"),
    "worker-unknown-key": ({"workers": [{**WORKER, "replica": 2}]}, "replica"),
    "hpa-zero-min": ({"autoscaling": {"minReplicas": 0}}, "/autoscaling/minReplicas"),
    "queue-zero-limit": ({"queues": {"emails": {"max_active": 0}}}, "/queues/emails/max_active"),
    "queue-fractional-limit": (
        {"queues": {"q": {"max_active_per_key": 1.5}}},
        "max_active_per_key",
    ),
    "queue-misspelt-limit": ({"queues": {"emails": {"max_actve": 5}}}, "max_actve"),
    "queue-rate-without-limit": ({"queues": {"q": {"rate": {"period_s": 1}}}}, "/queues/q/rate"),
    "queue-rate-long-period": (
        {"queues": {"q": {"functions": {"f": {"rate": {"limit": 1, "period_s": 90000}}}}}},
        "period_s",
    ),
    "queue-bad-name": ({"queues": {"no spaces": {"paused": True}}}, "propertyName 'no spaces'"),
    "queue-paused-string": ({"queues": {"q": {"paused": "yes"}}}, "/queues/q/paused"),
    "spread-policy": (
        {
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "Hope"}
            ]
        },
        "whenUnsatisfiable",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_values_schema_rejects_bad_values(case: str) -> None:
    values, where = BAD_VALUES[case]
    with helm.Chart.load(CHART_DIR) as chart, pytest.raises(helm.HelmValuesError) as rejected:
        chart.validate_schema(chart.merge_values(values))
    assert where in str(rejected.value)
    with pytest.raises(helm.HelmValuesError):  # and `helm install` would stop there
        render(values)


KEY = re.compile(r"^(?P<indent> *)(?P<key>[\w.-]+):(?P<value>.*)$")


def _undocumented_values(lines: list[str]) -> list[str]:
    """Keys of values.yaml holding a value with no comment right above them, unless a
    parent is documented as a whole (a `# --` comment above it, e.g. `resources`).

    Lines inside lists (default list items, such as topology constraints) are content,
    not keys, and are skipped.
    """
    missing = []
    parents: list[tuple[int, bool]] = []  # (indent, documented as a whole) of enclosing keys
    list_indent: int | None = None
    comment: list[str] = []  # the comment lines right above the current line
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if list_indent is not None and (not stripped or indent > list_indent):
            continue
        list_indent = None
        if stripped.startswith("- "):
            list_indent = indent
            continue
        match = KEY.match(line)
        if match:
            parents = [p for p in parents if p[0] < indent]
            if match["value"].strip() and not comment and not any(d for _, d in parents):
                missing.append(match["key"])
            parents.append((indent, any(c.startswith("# --") for c in comment)))
        if stripped.startswith("#"):
            comment.append(stripped)
        elif stripped:
            comment = []
    return missing


def test_every_value_is_commented() -> None:
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    assert _undocumented_values(lines) == []
    # The check can fail: a key without a comment is found.
    example = ["a: 1", "# -- b", "b:", "  c: 2", "# section", "d:", "  e: 3", "  # f", "  f: 4"]
    assert _undocumented_values(example) == ["a", "e"]
