"""Properties the issue asks of the rendered manifests, checked on `kubectl kustomize` output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import (
    GPU_OVERLAYS,
    OVERLAYS,
    REPO,
    Obj,
    containers,
    find,
    one,
    pod_security_problems,
    pod_specs,
)

ENGINE = "antangelmed-engine"
GATEWAY = "antangelmed-gateway"
# The only pods that talk to the Kubernetes API (engine discovery), each with its own projected token.
API_WATCHERS = {"antangelmed-router", "antangelmed-epp"}
# What the gateway's upstream is: the engines' Service, or the fleet's routing tier.
UPSTREAM = {
    "production": "http://antangelmed-router:8000",
    "production-inference-pool": "http://antangelmed-inference-istio:80",
}


def _env(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def _engine(objs: list[Obj]) -> tuple[Obj, Obj]:
    spec = one(objs, "Deployment", ENGINE)["spec"]["template"]["spec"]
    return spec, next(c for c in spec["containers"] if c["name"] == "engine")


def _gateway(objs: list[Obj]) -> tuple[Obj, Obj]:
    spec = one(objs, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    return spec, next(c for c in spec["containers"] if c["name"] == "gateway")


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------------------------------------------------
# Resources, probes, security context


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for workload, spec in pod_specs(rendered[overlay]):
        for c in containers(spec):
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part, {})), f"{workload}/{c['name']} {part}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_container_has_three_probes(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for workload, spec in pod_specs(rendered[overlay]):
        for c in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{workload}/{c['name']} lacks {probe}"


@pytest.mark.parametrize("overlay", GPU_OVERLAYS)
def test_engine_startup_probe_allows_loading_100gb(rendered: dict[str, list[Obj]], overlay: str) -> None:
    _, engine = _engine(rendered[overlay])
    startup = engine["startupProbe"]
    window = startup["periodSeconds"] * startup["failureThreshold"]
    # 100+ GB at a few hundred MB/s from network storage, plus CUDA graph capture: >= 30 min.
    assert window >= 1800, window
    assert startup["httpGet"]["path"] == "/health"


def test_bf16_startup_window_longer_than_fp8(rendered: dict[str, list[Obj]]) -> None:
    def window(overlay: str) -> int:
        p = _engine(rendered[overlay])[1]["startupProbe"]
        return p["periodSeconds"] * p["failureThreshold"]

    assert window("bf16-tp4") > window("h200-fp8-eagle3")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_engine_liveness_on_health_and_readiness_generates(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    _, engine = _engine(rendered[overlay])
    assert engine["livenessProbe"]["httpGet"]["path"] == "/health"
    ready = engine["readinessProbe"]["exec"]["command"]
    assert "/opt/antangelmed/probe.py" in ready and "--generate" in ready
    # The probe asks for the model name the engine actually serves.
    served = next(a.split("=", 1)[1] for a in engine["args"] if a.startswith("--served-model-name="))
    assert f"--model={served}" in ready
    # A hung generation must fail the probe, not hang it: the HTTP timeout fits in the probe's.
    http_timeout = float(next(a.split("=", 1)[1] for a in ready if a.startswith("--timeout=")))
    assert http_timeout < engine["readinessProbe"]["timeoutSeconds"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_probes_use_healthz_and_readyz(rendered: dict[str, list[Obj]], overlay: str) -> None:
    _, gw = _gateway(rendered[overlay])
    assert gw["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert gw["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gw["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_security_context_everywhere(rendered: dict[str, list[Obj]], overlay: str) -> None:
    problems = [
        p for workload, spec in pod_specs(rendered[overlay]) for p in pod_security_problems(workload, spec)
    ]
    assert not problems, problems


def test_security_check_catches_a_root_container(rendered: dict[str, list[Obj]]) -> None:
    spec = json.loads(json.dumps(_gateway(rendered["cpu-demo"])[0]))
    spec["containers"][0]["securityContext"]["runAsUser"] = 0
    spec["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_ADMIN"]
    del spec["automountServiceAccountToken"]
    assert len(pod_security_problems("gateway", spec)) == 3


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_accounts_mount_no_token(rendered: dict[str, list[Obj]], overlay: str) -> None:
    accounts = {sa["metadata"]["name"]: sa for sa in find(rendered[overlay], "ServiceAccount")}
    for workload, spec in pod_specs(rendered[overlay]):
        name = spec.get("serviceAccountName")
        if name is not None:
            assert accounts[name]["automountServiceAccountToken"] is False, workload


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_restricted_pod_security(rendered: dict[str, list[Obj]], overlay: str) -> None:
    ns = one(rendered[overlay], "Namespace", "antangelmed")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(o["metadata"].get("namespace", "antangelmed") == "antangelmed" for o in rendered[overlay])
    namespaced = [o for o in rendered[overlay] if o["kind"] != "Namespace"]
    assert all(o["metadata"].get("namespace") == "antangelmed" for o in namespaced)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_writable_paths_are_only_volumes(rendered: dict[str, list[Obj]], overlay: str) -> None:
    """Read-only root; the only writable places are emptyDirs and data PVCs; config is read-only."""
    for workload, spec in pod_specs(rendered[overlay]):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            kinds = set(v) - {"name"}
            assert kinds <= {"emptyDir", "persistentVolumeClaim", "configMap", "secret", "projected"}, (
                workload,
                v,
            )
            if "emptyDir" in v:
                assert "sizeLimit" in v["emptyDir"], (workload, v["name"])
            if "projected" in v:  # only a short-lived service-account token, for the API watchers
                assert workload in API_WATCHERS, workload
                token = next(
                    s["serviceAccountToken"] for s in v["projected"]["sources"] if "serviceAccountToken" in s
                )
                assert token["expirationSeconds"] <= 3600, workload
        for c in containers(spec):
            for m in c.get("volumeMounts", []):
                vol = volumes[m["name"]]
                if "configMap" in vol or "secret" in vol or "projected" in vol:
                    assert m.get("readOnly") is True, (workload, m)


# ------------------------------------------------------------------------------------------------
# Images


def _project_version() -> str:
    # A regex, not tomllib: the project still supports Python 3.10.
    match = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert match, "pyproject.toml has no version"
    return match.group(1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_pinned(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for workload, spec in pod_specs(rendered[overlay]):
        for c in containers(spec):
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{workload}/{c['name']}: untagged image {image}"
            assert tag != "latest" and re.match(r"^v?\d+\.\d+\.\d+", tag), f"{image}: tag is not a version"
            if name.startswith("antangelmed/"):
                assert tag == _project_version(), image


def test_cpu_demo_runs_the_cpu_image(rendered: dict[str, list[Obj]]) -> None:
    spec, engine = _engine(rendered["cpu-demo"])
    assert engine["image"].startswith("antangelmed/engine-cpu:")
    assert all(c["image"] == engine["image"] for c in spec["initContainers"])
    for overlay in GPU_OVERLAYS:
        assert _engine(rendered[overlay])[1]["image"].startswith("antangelmed/engine:")


# ------------------------------------------------------------------------------------------------
# Engine flavours


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_trust_remote_code(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for _, spec in pod_specs(rendered[overlay]):
        for c in containers(spec):
            assert not any("trust-remote-code" in a for a in c.get("command", []) + c.get("args", []))


@pytest.mark.parametrize("overlay,gpus", [("h200-fp8-eagle3", 1), ("bf16-tp4", 4), ("production", 1)])
def test_gpu_overlays_request_gpus(rendered: dict[str, list[Obj]], overlay: str, gpus: int) -> None:
    spec, engine = _engine(rendered[overlay])
    res = engine["resources"]
    assert int(res["requests"]["nvidia.com/gpu"]) == int(res["limits"]["nvidia.com/gpu"]) == gpus
    assert f"--tensor-parallel-size={gpus}" in engine["args"]
    assert spec["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert engine["command"] == ["vllm", "serve"]


@pytest.mark.parametrize("overlay", GPU_OVERLAYS)
def test_gpu_overlays_have_in_memory_dev_shm(rendered: dict[str, list[Obj]], overlay: str) -> None:
    spec, engine = _engine(rendered[overlay])
    mount = next(m for m in engine["volumeMounts"] if m["mountPath"] == "/dev/shm")
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["emptyDir"]["medium"] == "Memory"
    # Memory-backed: it must fit in the container's memory limit with room to spare.
    shm_gi = int(volume["emptyDir"]["sizeLimit"].removesuffix("Gi"))
    limit_gi = int(engine["resources"]["limits"]["memory"].removesuffix("Gi"))
    assert 8 <= shm_gi <= limit_gi // 4


@pytest.mark.parametrize("overlay", GPU_OVERLAYS)
def test_gpu_weights_from_read_only_pvc(rendered: dict[str, list[Obj]], overlay: str) -> None:
    spec, engine = _engine(rendered[overlay])
    mount = next(m for m in engine["volumeMounts"] if m["mountPath"] == "/models")
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    claim = volume["persistentVolumeClaim"]["claimName"]
    pvc = one(rendered[overlay], "PersistentVolumeClaim", claim)
    model_dir = engine["args"][0]
    assert model_dir.startswith("/models/"), model_dir
    assert int(pvc["spec"]["resources"]["requests"]["storage"].removesuffix("Gi")) >= 200


def test_h200_runs_fp8_with_eagle3(rendered: dict[str, list[Obj]]) -> None:
    spec, engine = _engine(rendered["h200-fp8-eagle3"])
    args = engine["args"]
    assert args[0] == "/models/AntAngelMed-FP8"
    spec_cfg = json.loads(next(a.split("=", 1)[1] for a in args if a.startswith("--speculative-config=")))
    assert spec_cfg == {"method": "eagle3", "model": "/models/eagle3-draft", "num_speculative_tokens": 4}
    assert "--max-model-len=32768" in args and "--gpu-memory-utilization=0.92" in args
    assert spec["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-H200"


def test_bf16_runs_the_bf16_model(rendered: dict[str, list[Obj]]) -> None:
    _, engine = _engine(rendered["bf16-tp4"])
    assert engine["args"][0] == "/models/AntAngelMed"
    assert not any(a.startswith("--speculative-config") for a in engine["args"])
    pvc = one(rendered["bf16-tp4"], "PersistentVolumeClaim", "antangelmed-models")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "400Gi"  # ~206 GB of BF16 weights


def test_cpu_demo_generates_its_checkpoint(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["cpu-demo"]
    spec, engine = _engine(objs)
    assert engine["command"] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert "--enforce-eager" in engine["args"] and "--model=/models/tiny" in engine["args"]
    assert _env(engine)["VLLM_CPU_KVCACHE_SPACE"]["value"] == "1"
    assert "nvidia.com/gpu" not in engine["resources"]["limits"] and "nodeSelector" not in spec
    (init,) = spec["initContainers"]
    script = init["command"][-1]
    # Idempotent: the generator refuses a non-empty dir, so it only runs without a config.json.
    assert script.startswith("test -f /models/tiny/config.json ||")
    assert "python -m model_plugin.checkpoints --preset tiny --out /models/tiny" in script
    models = next(v for v in spec["volumes"] if v["name"] == "models")
    assert set(models) == {"name", "emptyDir"}
    assert not find(objs, "PersistentVolumeClaim", "antangelmed-models")
    # A laptop cluster has no Prometheus Operator or KEDA: no custom resources.
    assert all(o["apiVersion"].split("/")[0] in ("v1", "apps", "networking.k8s.io") for o in objs)


def test_cpu_demo_gateway_uses_embedded_sqlite(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["cpu-demo"]
    gw_deploy = one(objs, "Deployment", GATEWAY)
    assert gw_deploy["spec"]["replicas"] == 1 and gw_deploy["spec"]["strategy"] == {"type": "Recreate"}
    spec, gw = _gateway(objs)
    url = _env(gw)["ANGEL_DATABASE_URL"]
    assert set(url) == {"name", "value"} and url["value"].startswith("sqlite:////data/")
    data = next(m for m in gw["volumeMounts"] if m["mountPath"] == "/data")
    claim = next(v for v in spec["volumes"] if v["name"] == data["name"])["persistentVolumeClaim"]
    one(objs, "PersistentVolumeClaim", claim["claimName"])


# ------------------------------------------------------------------------------------------------
# Wiring: names that must line up between objects


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_their_pods(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    deployments = find(objs, "Deployment")
    for svc in find(objs, "Service"):
        targets = [
            d
            for d in deployments
            if _labels_match(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(targets) == 1, svc["metadata"]["name"]
        port_names = {
            p["name"]
            for c in targets[0]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        assert all(p["targetPort"] in port_names for p in svc["spec"]["ports"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_points_at_engine_and_safety_policy(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    spec, gw = _gateway(objs)
    env = _env(gw)
    engine_svc = one(objs, "Service", ENGINE)
    direct = f"http://{ENGINE}:{engine_svc['spec']['ports'][0]['port']}"
    assert env["ANGEL_UPSTREAM_URL"]["value"] == UPSTREAM.get(overlay, direct)
    assert gw["command"] == ["python", "-m", "server"]
    assert env["ANGEL_PORT"]["value"] == str(gw["ports"][0]["containerPort"])
    policy_path = env["ANGEL_SAFETY_POLICY"]["value"]
    mount = next(m for m in gw["volumeMounts"] if policy_path.startswith(m["mountPath"] + "/"))
    cm_name = next(v for v in spec["volumes"] if v["name"] == mount["name"])["configMap"]["name"]
    cm = one(objs, "ConfigMap", cm_name)
    assert policy_path.rsplit("/", 1)[1] in cm["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_referenced_objects_exist(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    for workload, spec in pod_specs(objs):
        one(objs, "ServiceAccount", spec["serviceAccountName"]) if "serviceAccountName" in spec else None
        for v in spec.get("volumes", []):
            if "configMap" in v:
                one(objs, "ConfigMap", v["configMap"]["name"])
            if "persistentVolumeClaim" in v:
                one(objs, "PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])


# ------------------------------------------------------------------------------------------------
# Network policy: evaluate who may reach what, as the cluster's policy engine would


def _peer_allows(peer: Obj, src_labels: dict[str, str], src_ns_labels: dict[str, str], own_ns: bool) -> bool:
    pod_sel = peer.get("podSelector")
    ns_sel = peer.get("namespaceSelector")
    if "ipBlock" in peer:
        return False  # in-cluster pods are what we reason about here
    if ns_sel is None and not own_ns:
        return False  # a bare podSelector only matches pods of the policy's own namespace
    if ns_sel is not None and not _labels_match(ns_sel.get("matchLabels", {}), src_ns_labels):
        return False
    return pod_sel is None or _labels_match(pod_sel.get("matchLabels", {}), src_labels)


def ingress_allowed(
    objs: list[Obj], dst_labels: dict[str, str], port: int, src_labels: dict[str, str], src_ns: str
) -> bool:
    """Kubernetes NetworkPolicy semantics (matchLabels only, which is all we use)."""
    src_ns_labels = {"kubernetes.io/metadata.name": src_ns}
    policies = [
        p
        for p in find(objs, "NetworkPolicy")
        if "Ingress" in p["spec"]["policyTypes"]
        and _labels_match(p["spec"]["podSelector"].get("matchLabels", {}), dst_labels)
    ]
    if not policies:
        return True
    for p in policies:
        for rule in p["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(pp["port"] == port for pp in ports):
                continue
            peers = rule.get("from")
            if peers is None or any(
                _peer_allows(peer, src_labels, src_ns_labels, src_ns == "antangelmed") for peer in peers
            ):
                return True
    return False


GATEWAY_POD = {"app.kubernetes.io/name": GATEWAY, "app.kubernetes.io/component": "gateway"}
ENGINE_POD = {"app.kubernetes.io/name": ENGINE, "app.kubernetes.io/component": "engine"}
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}
ROUTER_POD = {"app.kubernetes.io/name": "antangelmed-router", "app.kubernetes.io/component": "router"}
INFERENCE_PROXY_POD = {"gateway.networking.k8s.io/gateway-name": "antangelmed-inference"}
EPP_POD = {"app.kubernetes.io/name": "antangelmed-epp", "app.kubernetes.io/component": "endpoint-picker"}
# Who sends the engines requests: the gateway itself, or the fleet's routing tier (never the gateway then).
ENGINE_CLIENTS = {
    "production": [ROUTER_POD],
    "production-inference-pool": [INFERENCE_PROXY_POD, EPP_POD],
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_gateway_and_prometheus_reach_engine(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    # The policy's selector really selects the engine pods (and not the gateway's).
    engine_labels = one(objs, "Deployment", ENGINE)["spec"]["template"]["metadata"]["labels"]
    np = one(objs, "NetworkPolicy", ENGINE)
    assert _labels_match(np["spec"]["podSelector"]["matchLabels"], engine_labels)
    assert not _labels_match(np["spec"]["podSelector"]["matchLabels"], GATEWAY_POD)

    clients = ENGINE_CLIENTS.get(overlay, [GATEWAY_POD])
    assert all(ingress_allowed(objs, engine_labels, 8000, c, "antangelmed") for c in clients)
    if GATEWAY_POD not in clients:  # behind a routing tier, the gateway cannot bypass it
        assert not ingress_allowed(objs, engine_labels, 8000, GATEWAY_POD, "antangelmed")
    assert ingress_allowed(objs, engine_labels, 8000, PROMETHEUS_POD, "monitoring")
    # Everyone else is refused: a client pod, a "prometheus" outside monitoring, the right pod on a
    # wrong port, a gateway look-alike from another namespace.
    assert not ingress_allowed(objs, engine_labels, 8000, {"app": "curl"}, "antangelmed")
    assert not ingress_allowed(objs, engine_labels, 8000, {"app": "curl"}, "monitoring")
    assert not ingress_allowed(objs, engine_labels, 8000, PROMETHEUS_POD, "default")
    assert not ingress_allowed(objs, engine_labels, 8000, GATEWAY_POD, "default")
    assert not any(ingress_allowed(objs, engine_labels, 22, c, "antangelmed") for c in clients)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_and_gateway_front_door(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    deny = one(objs, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"]["podSelector"] == {} and "ingress" not in deny["spec"]
    # Anything new in the namespace starts closed.
    assert not ingress_allowed(objs, {"app": "something-new"}, 80, GATEWAY_POD, "antangelmed")
    # Clients reach the gateway's port, and only that port.
    assert ingress_allowed(objs, GATEWAY_POD, 8080, {"app": "ingress-nginx"}, "ingress-nginx")
    assert not ingress_allowed(objs, GATEWAY_POD, 9999, {"app": "ingress-nginx"}, "ingress-nginx")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_engine_egress_is_dns_only(rendered: dict[str, list[Obj]], overlay: str) -> None:
    np = one(rendered[overlay], "NetworkPolicy", ENGINE)
    assert "Egress" in np["spec"]["policyTypes"]
    ports = {(p["port"], p["protocol"]) for rule in np["spec"]["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP")}


def test_redis_reachable_only_from_gateway(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production"]
    redis_labels = one(objs, "Deployment", "antangelmed-redis")["spec"]["template"]["metadata"]["labels"]
    assert ingress_allowed(objs, redis_labels, 6379, GATEWAY_POD, "antangelmed")
    assert not ingress_allowed(objs, redis_labels, 6379, ENGINE_POD, "antangelmed")
    assert not ingress_allowed(objs, redis_labels, 6379, PROMETHEUS_POD, "monitoring")


# ------------------------------------------------------------------------------------------------
# Production


def test_production_gateway_autoscaled_and_spread(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production"]
    gw = one(objs, "Deployment", GATEWAY)
    # The HPA owns the count; a fixed `replicas` would be reset by every `kubectl apply`.
    assert "replicas" not in gw["spec"]
    hpa = one(objs, "HorizontalPodAutoscaler", GATEWAY)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": GATEWAY}
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    for name in (GATEWAY, ENGINE):
        d = one(objs, "Deployment", name)
        pod_labels = d["spec"]["template"]["metadata"]["labels"]
        spread = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        keys = {c["topologyKey"] for c in spread}
        assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, name
        assert all(_labels_match(c["labelSelector"]["matchLabels"], pod_labels) for c in spread)


def test_production_pdbs_cover_gateway_and_engine(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production"]
    for name in (GATEWAY, ENGINE):
        pdb = one(objs, "PodDisruptionBudget", name)
        pod_labels = one(objs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert _labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
        assert pdb["spec"]["maxUnavailable"] == 1
    # A PDB with maxUnavailable 1 only protects anything with >= 2 pods.
    assert one(objs, "ScaledObject", ENGINE)["spec"]["minReplicaCount"] >= 2
    assert one(objs, "HorizontalPodAutoscaler", GATEWAY)["spec"]["minReplicas"] >= 2


def test_production_keda_scales_engine_on_queue_depth(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production"]
    assert "replicas" not in one(objs, "Deployment", ENGINE)["spec"]
    so = one(objs, "ScaledObject", ENGINE)
    assert so["spec"]["scaleTargetRef"]["name"] == ENGINE
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert "vllm:num_requests_waiting" in trigger["metadata"]["query"]
    assert float(trigger["metadata"]["threshold"]) > 0
    # No HPA may also target the engine: KEDA's and ours would fight.
    assert all(h["spec"]["scaleTargetRef"]["name"] != ENGINE for h in find(objs, "HorizontalPodAutoscaler"))


def test_production_shares_rate_limits_and_uses_postgres_secret(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production"]
    one(objs, "Deployment", "antangelmed-redis")
    one(objs, "Service", "antangelmed-redis")
    _, gw = _gateway(objs)
    env = _env(gw)
    assert env["ANGEL_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "antangelmed-redis", "key": "url"}
    assert env["ANGEL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "antangelmed-database"
    pvc = one(objs, "PersistentVolumeClaim", "antangelmed-models")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # engines on several nodes share the weights


def test_production_engine_api_needs_the_gateways_key(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production"]
    engine_key = _env(_engine(objs)[1])["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    gateway_key = _env(_gateway(objs)[1])["ANGEL_UPSTREAM_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert engine_key == gateway_key == {"name": "antangelmed-engine-api-key", "key": "key"}


# ------------------------------------------------------------------------------------------------
# Secrets


_SECRETISH_NAME = re.compile(r"(KEY|PASSWORD|TOKEN|SECRET|AUTH|DATABASE_URL|REDIS_URL)", re.IGNORECASE)
_CREDENTIAL_URL = re.compile(r"://[^/\s:@]*:[^/\s@]+@")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secrets_in_manifests(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    assert not find(objs, "Secret"), "Secrets are created in the cluster, never shipped in git"
    for workload, spec in pod_specs(objs):
        for c in containers(spec):
            for e in c.get("env", []):
                value = e.get("value", "")
                assert not _CREDENTIAL_URL.search(value), (workload, e["name"])
                if _SECRETISH_NAME.search(e["name"]) and not value.startswith("sqlite:"):
                    assert "secretKeyRef" in e.get("valueFrom", {}), (workload, e["name"])


def test_no_credentials_in_deploy_files() -> None:
    """Scan the source files too (comments and README snippets included)."""
    patterns = [
        _CREDENTIAL_URL,
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        re.compile(r"\bsk-[A-Za-z0-9]{16,}"),
        re.compile(r"\bangel[-_][A-Za-z0-9]{20,}"),
    ]
    for path in (REPO / "deploy").rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".json", ".md", ".py"):
            text = path.read_text()
            for pat in patterns:
                for m in pat.finditer(text):
                    # README placeholders (<...>) and shell variables ($VAR) are not credentials.
                    assert "<" in m.group(0) or "$" in m.group(0), (
                        f"{path.relative_to(REPO)}: {m.group(0)[:12]}..."
                    )


# ------------------------------------------------------------------------------------------------
# Safety policy


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shipped_safety_policy_loads_with_the_gateways_loader(
    rendered: dict[str, list[Obj]], overlay: str, tmp_path: Path
) -> None:
    """The gateway refuses to start on a bad policy: the ConfigMap's must pass its own validator."""
    policy_module = pytest.importorskip("server.safety.policy", reason="the gateway's safety layer is absent")
    spec, gw = _gateway(rendered[overlay])
    path = _env(gw)["ANGEL_SAFETY_POLICY"]["value"]
    mount = next(m for m in gw["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    cm_name = next(v for v in spec["volumes"] if v["name"] == mount["name"])["configMap"]["name"]
    text = one(rendered[overlay], "ConfigMap", cm_name)["data"][path.rsplit("/", 1)[1]]
    (tmp_path / "policy.yaml").write_text(text)
    policy = policy_module.load_policy(str(tmp_path / "policy.yaml"))
    assert {"patient", "clinician"} <= set(policy.profiles)
    assert policy.profiles["patient"].prompt_injection.action == "block"
    # A broken copy is refused, so this test would notice a policy the gateway cannot load.
    (tmp_path / "bad.yaml").write_text(text.replace("action: block", "action: shrug", 1))
    with pytest.raises(policy_module.SafetyPolicyError):
        policy_module.load_policy(str(tmp_path / "bad.yaml"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_labelled_with_the_stack(rendered: dict[str, list[Obj]], overlay: str) -> None:
    """`kubectl get all -l app.kubernetes.io/instance=<overlay>` finds everything the overlay made."""
    for o in rendered[overlay]:
        labels = o["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "antangelmed", (o["kind"], o["metadata"]["name"])
        assert labels.get("app.kubernetes.io/instance") == overlay, (o["kind"], o["metadata"]["name"])
