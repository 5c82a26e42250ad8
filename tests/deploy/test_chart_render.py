"""The Helm chart, rendered by Helm's engine: what each common setup produces, and helm lint."""

import json
from typing import Any

import helm_python as helm
import pytest
from chart_render import (
    CHART_DIR,
    KUBE_VERSIONS,
    NAMESPACE,
    VALUE_SETS,
    Rendered,
    chart_metadata,
    container_env,
    containers,
    fullname,
    package_version,
    pod_labels,
    render,
)

from jobwire.flow import Rate
from jobwire.server.auth import Role, parse_tokens
from jobwire.server.settings import QUEUE_SETUPS

pytestmark = pytest.mark.xdist_group("chart-render")  # each render once

NAME = fullname()


@pytest.fixture(scope="module")
def defaults() -> Rendered:
    return render(VALUE_SETS["defaults"])


@pytest.fixture(scope="module")
def everything() -> Rendered:
    return render(VALUE_SETS["everything"])


@pytest.fixture(scope="module")
def rest_only() -> Rendered:
    return render(VALUE_SETS["rest-only"])


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_helm_lint_finds_nothing(value_set: str, kube_version: str) -> None:
    values = VALUE_SETS[value_set]
    version = f"v{kube_version}"
    report = helm.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE, kube_version=version)
    # Severity 1 is information ("icon is recommended"); 2 warnings and 3 errors.
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert findings == [] and report["errors"] == [], report


def test_chart_version_is_the_package_version_and_fetches_nothing() -> None:
    chart = chart_metadata()
    assert chart["appVersion"] == package_version()
    assert chart["kubeVersion"] == f">={KUBE_VERSIONS[0]}-0"
    # No subcharts: rendering and installing never download anything.
    assert "dependencies" not in chart and not (CHART_DIR / "charts").exists()


def test_defaults_run_the_service_on_the_bundled_redis(defaults: Rendered) -> None:
    assert sorted(defaults.names("Deployment")) == [NAME]
    assert defaults.names("StatefulSet") == [f"{NAME}-redis"]
    assert defaults.names("HorizontalPodAutoscaler") == []
    for kind in ("ServiceMonitor", "ScaledObject", "NetworkPolicy"):
        assert defaults.of_kind(kind) == [], kind
    # The service's store is the bundled Redis, by its Service's name and port.
    redis_service = defaults.get("Service", f"{NAME}-redis")
    assert redis_service["spec"]["ports"][0]["port"] == 6379
    url = defaults.secret_data(f"{NAME}-backend")["url"]
    assert url == f"redis://{NAME}-redis:6379/0"
    env = container_env(defaults, containers(defaults.get("Deployment", NAME))[0])
    assert env["JOBWIRE_BACKEND"] == url
    assert defaults.get("Deployment", NAME)["spec"]["replicas"] == 2


def test_image_tag_defaults_to_app_version_and_can_be_set() -> None:
    def image(values: dict[str, Any]) -> str:
        return str(containers(render(values).get("Deployment", NAME))[0]["image"])

    assert image({}) == f"jobwire:{package_version()}"
    assert image({"image": {"repository": "reg.example/jobwire", "tag": "1.2.3"}}) == (
        "reg.example/jobwire:1.2.3"
    )


def test_service_pod_is_locked_down(defaults: Rendered) -> None:
    deployment = defaults.get("Deployment", NAME)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # A read-only root, so /tmp is an emptyDir.
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    assert "emptyDir" in volume
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_probes_hit_health_and_readiness_on_the_http_port(defaults: Rendered) -> None:
    (container,) = containers(defaults.get("Deployment", NAME))
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8080, "grpc": 50051}  # gRPC is on by default
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["port"] == "http"
    service = defaults.get("Service", NAME)
    assert service["spec"]["ports"][0] == {
        "name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"
    }  # fmt: skip
    assert service["spec"]["selector"] == pod_labels(defaults.get("Deployment", NAME))


def test_pods_roll_when_config_or_secrets_change() -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        deployment = render(values).get("Deployment", NAME)
        return dict(deployment["spec"]["template"]["metadata"]["annotations"])

    tokens = {"auth": {"adminToken": "a1", "workerToken": "w1", "clientToken": "c1"}}
    base = annotations(tokens)
    assert base == annotations(tokens)  # stable for the same values
    relogged = annotations({**tokens, "config": {"logLevel": "debug"}})
    assert relogged["checksum/config"] != base["checksum/config"]
    assert relogged["checksum/secret"] == base["checksum/secret"]
    rotated = annotations({"auth": {"adminToken": "a2", "workerToken": "w1", "clientToken": "c1"}})
    assert rotated["checksum/secret"] != base["checksum/secret"]
    assert rotated["checksum/config"] == base["checksum/config"]


def test_topology_spread_selects_the_pods_it_spreads(defaults: Rendered) -> None:
    deployment = defaults.get("Deployment", NAME)
    constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    for constraint in constraints:
        assert constraint["labelSelector"]["matchLabels"] == pod_labels(deployment)
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


def test_pdb_covers_the_service_pods(defaults: Rendered) -> None:
    (pdb,) = defaults.of_kind("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"] == pod_labels(defaults.get("Deployment", NAME))


def test_tokens_secret_has_admin_worker_and_client_tokens(defaults: Rendered) -> None:
    data = defaults.secret_data(f"{NAME}-tokens")
    roles = parse_tokens(data["tokens"])  # the service's own parser
    assert roles == {
        data["admin-token"]: Role.ADMIN,
        data["worker-token"]: Role.WORKER,
        data["client-token"]: Role.CLIENT,
    }
    for key in ("admin-token", "worker-token", "client-token"):
        assert len(data[key]) == 40 and data[key].isalnum(), key
    env = container_env(defaults, containers(defaults.get("Deployment", NAME))[0])
    assert env["JOBWIRE_TOKENS"] == data["tokens"]
    assert env["JOBWIRE_HOST"] == "0.0.0.0"


def test_given_tokens_are_used_as_they_are() -> None:
    tokens = {"adminToken": "adm-1", "workerToken": "wrk-1", "clientToken": "cli-1"}
    data = render({"auth": tokens}).secret_data(f"{NAME}-tokens")
    assert data["tokens"] == "adm-1:admin,wrk-1:worker,cli-1:client"


def test_external_postgres_url_comes_from_the_users_secret() -> None:
    rendered = render(VALUE_SETS["external-postgres"])
    assert rendered.of_kind("StatefulSet") == []
    assert f"{NAME}-backend" not in rendered.names("Secret")  # the user's Secret is used
    (container,) = containers(rendered.get("Deployment", NAME))
    (backend,) = [var for var in container["env"] if var["name"] == "JOBWIRE_BACKEND"]
    assert backend["valueFrom"]["secretKeyRef"] == {"name": "jobwire-db", "key": "postgres-url"}
    assert rendered.get("Deployment", NAME)["spec"]["replicas"] == 3


def test_a_backend_url_value_goes_into_a_secret_not_the_pod_spec() -> None:
    url = "postgresql://jobwire:s3cret@db.example:5432/jobwire"
    rendered = render({"redis": {"enabled": False}, "backend": {"url": url}})
    assert rendered.secret_data(f"{NAME}-backend")["url"] == url
    assert "s3cret" not in json.dumps(rendered.get("Deployment", NAME))
    env = container_env(rendered, containers(rendered.get("Deployment", NAME))[0])
    assert env["JOBWIRE_BACKEND"] == url


def test_hpa_takes_over_the_replica_count(everything: Rendered) -> None:
    deployment = everything.get("Deployment", NAME)
    assert "replicas" not in deployment["spec"]
    hpa = everything.get("HorizontalPodAutoscaler", NAME)
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}
    assert hpa["spec"]["scaleTargetRef"] == target
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    (cpu,) = hpa["spec"]["metrics"]
    assert cpu["resource"]["name"] == "cpu"


def test_grpc_adds_the_port_and_the_flag(defaults: Rendered, rest_only: Rendered) -> None:
    (container,) = containers(defaults.get("Deployment", NAME))  # on by default
    assert container["command"] == ["jobwire", "serve"]
    assert container["args"] == ["--grpc-port", "50051"]
    assert {"name": "grpc", "containerPort": 50051, "protocol": "TCP"} in container["ports"]
    ports = {p["name"]: p for p in defaults.get("Service", NAME)["spec"]["ports"]}
    assert ports["grpc"]["port"] == 50051 and ports["grpc"]["targetPort"] == "grpc"
    assert "JOBWIRE_GRPC_PORT" not in defaults.get("ConfigMap", NAME)["data"]
    # Disabled: no flag, no port, and the service is told to start no gRPC server.
    (plain,) = containers(rest_only.get("Deployment", NAME))
    assert "args" not in plain
    assert [port["name"] for port in plain["ports"]] == ["http"]
    assert rest_only.get("ConfigMap", NAME)["data"]["JOBWIRE_GRPC_PORT"] == "0"
    # ... and its workers pull over REST.
    (worker,) = containers(rest_only.get("Deployment", f"{NAME}-worker-emails"))
    assert container_env(rest_only, worker)["JOBWIRE_URL"] == f"http://{NAME}:8080"


def test_worker_groups_reach_the_service_with_the_worker_token(everything: Rendered) -> None:
    ports = {p["name"]: p["port"] for p in everything.get("Service", NAME)["spec"]["ports"]}
    tokens = everything.secret_data(f"{NAME}-tokens")
    commands = {}
    for group in ("emails", "exports"):
        deployment = everything.get("Deployment", f"{NAME}-worker-{group}")
        (container,) = containers(deployment)
        env = container_env(everything, container)
        assert env["JOBWIRE_URL"] == f"grpc://{NAME}:{ports['grpc']}"  # the Work stream
        assert env["JOBWIRE_TOKEN"] == tokens["worker-token"]
        assert pod_labels(deployment)["app.kubernetes.io/component"] == f"worker-{group}"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        commands[group] = (container["image"], container["command"], deployment["spec"])
    image, command, spec = commands["emails"]
    assert image == f"jobwire:{package_version()}"  # the chart's image by default
    assert command == ["jobwire", "worker", "app.tasks.settings", "--concurrency", "20"]
    assert "replicas" not in spec  # KEDA owns it
    image, command, spec = commands["exports"]
    assert image == "registry.example.com/acme-tasks:1.4.2"
    assert "replicas" not in spec  # the HPA owns it
    env = container_env(everything, containers(everything.get("Deployment", NAME))[0])
    assert "SMTP_HOST" not in env  # a group's env stays in its group


def test_worker_replicas_when_nothing_scales_them() -> None:
    workers = [
        {"name": "a", "command": ["jobwire", "worker", "x.settings"]},
        {"name": "b", "command": ["jobwire", "worker", "y.settings"], "replicas": 0},
    ]
    rendered = render({"workers": workers})
    assert rendered.get("Deployment", f"{NAME}-worker-a")["spec"]["replicas"] == 1
    assert rendered.get("Deployment", f"{NAME}-worker-b")["spec"]["replicas"] == 0


def test_keda_scales_a_worker_group_on_its_queue_depth(everything: Rendered) -> None:
    (scaled,) = everything.of_kind("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    assert target["name"] == f"{NAME}-worker-emails"
    assert target["name"] in everything.names("Deployment")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    query = trigger["metadata"]["query"]
    assert query.startswith("max(jobwire_queue_jobs{")  # replicas report the same depth
    for matcher in ('queue="emails"', 'status="queued"', f'service="{NAME}"'):
        assert matcher in query
    assert trigger["metadata"]["threshold"] == "50"
    assert trigger["metadata"]["serverAddress"].startswith("http")


def test_service_monitor_scrapes_the_service_metrics(everything: Rendered) -> None:
    (monitor,) = everything.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = everything.get("Service", NAME)
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    configmap = everything.get("ConfigMap", NAME)
    assert configmap["data"]["JOBWIRE_METRICS_PUBLIC"] == "true"


def _allowed(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a pod with these labels (same namespace) may reach the policy's pods."""
    for rule in policy["spec"].get("ingress", []):
        for peer in rule.get("from", []):
            wanted = peer.get("podSelector", {}).get("matchLabels")
            same_namespace = "namespaceSelector" not in peer
            if wanted is not None and same_namespace and wanted.items() <= labels.items():
                return True
    return False


def test_network_policies_let_only_the_right_pods_in(everything: Rendered) -> None:
    server = pod_labels(everything.get("Deployment", NAME))
    worker = pod_labels(everything.get("Deployment", f"{NAME}-worker-emails"))
    redis = pod_labels(everything.get("StatefulSet", f"{NAME}-redis"))
    policies = {p["metadata"]["name"]: p for p in everything.of_kind("NetworkPolicy")}
    service_policy = policies[NAME]
    assert service_policy["spec"]["podSelector"]["matchLabels"] == server
    assert _allowed(service_policy, worker)
    assert _allowed(service_policy, {f"{NAME}-client": "true"})
    assert not _allowed(service_policy, {"app": "someone-else"})
    ports = {p["port"] for rule in service_policy["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {"http", "grpc"}
    redis_policy = policies[f"{NAME}-redis"]
    assert redis_policy["spec"]["podSelector"]["matchLabels"] == redis
    assert _allowed(redis_policy, server)
    assert not _allowed(redis_policy, worker)
    worker_policy = policies[f"{NAME}-worker-emails"]
    assert worker_policy["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in worker_policy["spec"]  # nothing may connect to a worker


def test_queues_become_the_services_jobwire_queues(
    defaults: Rendered, everything: Rendered
) -> None:
    """`queues` reaches the service as JSON in JOBWIRE_QUEUES; none set, no variable."""
    assert "JOBWIRE_QUEUES" not in defaults.get("ConfigMap", NAME)["data"]
    env = container_env(everything, containers(everything.get("Deployment", NAME))[0])
    queues = json.loads(env["JOBWIRE_QUEUES"])
    assert queues == VALUE_SETS["everything"]["queues"]
    setups = QUEUE_SETUPS.validate_json(env["JOBWIRE_QUEUES"])  # as `jobwire serve` reads it
    emails = setups["emails"].to_settings()
    assert (emails.max_active, emails.rate_per_key) == (20, Rate(limit=5, period_s=0.5))
    assert emails.functions["send_welcome_email"].rate == Rate(limit=50, period_s=1.0)
    assert (setups["reports"].paused, setups["reports"].has_limits) == (True, False)
    # A change of limits changes the pods' config checksum: they restart and apply it.
    changed = render({**VALUE_SETS["everything"], "queues": {"emails": {"max_active": 1}}})
    annotations = [
        r.get("Deployment", NAME)["spec"]["template"]["metadata"]["annotations"]
        for r in (everything, changed)
    ]
    assert annotations[0]["checksum/config"] != annotations[1]["checksum/config"]


def test_grafana_dashboard_configmap(everything: Rendered) -> None:
    configmap = everything.get("ConfigMap", f"{NAME}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Jobwire"}
    dashboard = json.loads(configmap["data"]["jobwire.json"])
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    for metric in (
        "jobwire_jobs_completed_total",
        "jobwire_jobs_failed_total",
        "jobwire_job_queue_wait_seconds_bucket",
        "jobwire_queue_jobs",
    ):
        assert metric in exprs, metric
    panel_ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))


def test_notes_say_how_to_reach_the_service(defaults: Rendered, everything: Rendered) -> None:
    assert f"http://{NAME}:8080" in defaults.notes
    assert f"secret {NAME}-tokens" in defaults.notes
    assert "bundled Redis" in defaults.notes
    assert f"{NAME}-worker-emails: jobwire worker app.tasks.settings" in everything.notes


BOTH_SCALERS = {"autoscaling": {"enabled": True}, "keda": {"enabled": True}}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": {"url": "redis://elsewhere:6379"}}, "redis.enabled=false"),
        ({"redis": {"enabled": False}}, "set backend.url, backend.existingSecret.name"),
        (
            {"workers": [{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]},
            'the name "a" is used twice',
        ),
        (
            {"workers": [{"name": "a", "command": ["x"], **BOTH_SCALERS}]},
            "autoscaling or keda, not both",
        ),
        ({"serviceMonitor": {"enabled": True}, "metrics": {"enabled": False}}, "metrics.enabled"),
        ({"podDisruptionBudget": {"minAvailable": 1}}, "not both"),
    ],
    ids=["two-stores", "no-store", "same-worker", "hpa-and-keda", "no-metrics", "pdb-both"],
)
def test_contradictory_values_fail_with_a_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as failure:
        render(values)
    assert message in str(failure.value)
