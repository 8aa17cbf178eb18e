"""The fleets' routing tier, on the rendered manifests.

`production`: vllm-router as its own Deployment (two replicas, a PDB, spread), finding the engine pods by
label through the Kubernetes API with a read-only Role and its own short-lived token, on the only network
path gateway -> router -> engines; its arguments parse with the pinned vllm-router's own parser.
`production-inference-pool`: the same fleet with an InferencePool scheduled by llm-d's endpoint picker in
the router's place (the objects themselves are schema-checked in test_deploy_schemas.py).
"""

from __future__ import annotations

import argparse
import re

import pytest
import yaml

from tests.deploy.deploy_helpers import FLEET_OVERLAYS, Obj, find, one, pod_specs
from tests.deploy.test_deploy_properties import (
    ENGINE_POD,
    EPP_POD,
    GATEWAY_POD,
    INFERENCE_PROXY_POD,
    PROMETHEUS_POD,
    ROUTER_POD,
    _labels_match,
    ingress_allowed,
)

ROUTER = "antangelmed-router"
ENGINE = "antangelmed-engine"


def _router(objs: list[Obj]) -> tuple[Obj, Obj]:
    spec = one(objs, "Deployment", ROUTER)["spec"]["template"]["spec"]
    return spec, next(c for c in spec["containers"] if c["name"] == "router")


def _engine_container(objs: list[Obj]) -> Obj:
    spec = one(objs, "Deployment", ENGINE)["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == "engine")


def _flag(args: list[str], name: str) -> list[str]:
    """The values after `name` (an `--x=v` flag gives one; `--x a b` gives the words up to the next flag)."""
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            return [a.split("=", 1)[1]]
        if a == name:
            values = []
            for v in args[i + 1 :]:
                if v.startswith("--"):
                    break
                values.append(v)
            return values
    return []


def egress_allowed(objs: list[Obj], src: dict[str, str], dst: dict[str, str], port: int) -> bool:
    """Kubernetes NetworkPolicy egress semantics for a destination pod in the same namespace."""
    policies = [
        p
        for p in find(objs, "NetworkPolicy")
        if "Egress" in p["spec"]["policyTypes"]
        and _labels_match(p["spec"]["podSelector"].get("matchLabels", {}), src)
    ]
    if not policies:
        return True
    for p in policies:
        for rule in p["spec"].get("egress", []):
            ports = rule.get("ports")
            if ports and not any(pp["port"] == port for pp in ports):
                continue
            peers = rule.get("to")
            if peers is None:
                return True
            for peer in peers:
                if "ipBlock" in peer or "namespaceSelector" in peer:
                    continue  # other namespaces and addresses: not the pods reasoned about here
                if _labels_match(peer["podSelector"].get("matchLabels", {}), dst):
                    return True
    return False


def reaches(objs: list[Obj], src: dict[str, str], dst: dict[str, str], port: int) -> bool:
    """A connection opens only when the source may send it and the destination may receive it."""
    return egress_allowed(objs, src, dst, port) and ingress_allowed(objs, dst, port, src, "antangelmed")


# ------------------------------------------------------------------------------------------------
# production: vllm-router


def test_router_runs_as_two_spread_replicas_under_a_pdb(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production"]
    deployment = one(objs, "Deployment", ROUTER)
    assert deployment["spec"]["replicas"] == 2
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = one(objs, "PodDisruptionBudget", ROUTER)
    assert pdb["spec"]["maxUnavailable"] == 1 and _labels_match(
        pdb["spec"]["selector"]["matchLabels"], pod_labels
    )
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    svc = one(objs, "Service", ROUTER)
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"http": 8000, "metrics": 29000}


def test_router_finds_the_engines_keda_scales(rendered: dict[str, list[Obj]]) -> None:
    """Discovery by the engine pods' labels, in the router's own namespace, on the engine's API port: the
    pods KEDA adds to the engine Deployment are routed to as soon as they are Ready."""
    objs = rendered["production"]
    _, router = _router(objs)
    args = router["args"]
    assert "--service-discovery" in args and _flag(args, "--policy") == ["cache_aware"]
    selector = dict(s.split("=", 1) for s in _flag(args, "--selector"))
    engine = one(objs, "Deployment", ENGINE)
    assert selector and _labels_match(selector, engine["spec"]["template"]["metadata"]["labels"])
    # ...and only the engines: not the gateway, not the router itself.
    for name in ("antangelmed-gateway", ROUTER):
        assert not _labels_match(
            selector, one(objs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        )
    engine_port = next(p["containerPort"] for p in _engine_container(objs)["ports"] if p["name"] == "http")
    assert _flag(args, "--service-discovery-port") == [str(engine_port)]
    assert _flag(args, "--service-discovery-namespace") == ["$(POD_NAMESPACE)"]
    env = {e["name"]: e for e in router["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert one(objs, "ScaledObject", ENGINE)["spec"]["scaleTargetRef"]["name"] == ENGINE


def test_router_args_parse_with_the_pinned_router(rendered: dict[str, list[Obj]]) -> None:
    router_args = pytest.importorskip("vllm_router.router_args", reason="vllm-router is not installed")
    _, router = _router(rendered["production"])
    parser = argparse.ArgumentParser()
    router_args.RouterArgs.add_cli_args(parser)
    args = [a.replace("$(POD_NAMESPACE)", "antangelmed") for a in router["args"]]
    parsed = router_args.RouterArgs.from_cli_args(parser.parse_args(args))
    assert parsed.service_discovery and parsed.service_discovery_namespace == "antangelmed"
    assert parsed.selector == {"app.kubernetes.io/name": ENGINE, "app.kubernetes.io/component": "engine"}
    assert parsed.policy == "cache_aware" and parsed.prometheus_port == 29000
    with pytest.raises(SystemExit):  # the parser is strict: a misspelt flag is refused
        parser.parse_args([*args, "--cache-treshold=0.5"])


def test_router_probes_and_security(rendered: dict[str, list[Obj]]) -> None:
    _, router = _router(rendered["production"])
    assert router["startupProbe"]["httpGet"]["path"] == "/liveness"
    assert router["livenessProbe"]["httpGet"]["path"] == "/liveness"
    # Ready only with a healthy engine known (vllm-router's /readiness answers 503 otherwise).
    assert router["readinessProbe"]["httpGet"]["path"] == "/readiness"
    assert router["image"].startswith("antangelmed/router:")
    assert router["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("overlay", FLEET_OVERLAYS)
def test_only_the_discovery_pods_can_read_the_api_and_only_pods(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    assert not find(objs, "ClusterRole") and not find(objs, "ClusterRoleBinding")
    watcher = ROUTER if overlay == "production" else "antangelmed-epp"
    for role in find(objs, "Role"):
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule  # read-only
            assert "secrets" not in rule["resources"] and "*" not in rule["resources"], rule
    (binding,) = find(objs, "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": watcher, "namespace": "antangelmed"}]
    assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]} in one(
        objs, "Role", binding["roleRef"]["name"]
    )["rules"]
    tokens = {
        workload
        for workload, spec in pod_specs(objs)
        for v in spec.get("volumes", [])
        if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))
    }
    assert tokens == {watcher}
    assert one(objs, "Deployment", watcher)["spec"]["template"]["spec"]["serviceAccountName"] == watcher


def test_production_path_is_gateway_router_engines(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production"]
    assert reaches(objs, GATEWAY_POD, ROUTER_POD, 8000)
    assert reaches(objs, ROUTER_POD, ENGINE_POD, 8000)
    assert not reaches(objs, GATEWAY_POD, ENGINE_POD, 8000)  # no way around the router
    assert not ingress_allowed(objs, ROUTER_POD, 8000, {"app": "curl"}, "antangelmed")
    assert not ingress_allowed(objs, ROUTER_POD, 8000, ENGINE_POD, "antangelmed")
    assert ingress_allowed(objs, ROUTER_POD, 29000, PROMETHEUS_POD, "monitoring")
    assert not ingress_allowed(objs, ROUTER_POD, 8000, PROMETHEUS_POD, "monitoring")
    assert not egress_allowed(objs, ROUTER_POD, {"app.kubernetes.io/name": "antangelmed-redis"}, 6379)


def test_engines_serve_what_the_routing_policy_reads(rendered: dict[str, list[Obj]]) -> None:
    """cache_aware renders chats to tokens on the engines (/v1/*/render, --enable-scale-out) and reads no KV
    events; an engine publishes KV events only for a policy that subscribes to them (kv_aware)."""
    objs = rendered["production"]
    engine_args = _engine_container(objs)["args"]
    policy = _flag(_router(objs)[1]["args"], "--policy")[0]
    assert "--enable-scale-out" in engine_args
    publishes = any(a.startswith("--kv-events-config") for a in engine_args)
    assert publishes == (policy == "kv_aware")


@pytest.mark.parametrize("overlay", FLEET_OVERLAYS)
def test_gateway_replicas_share_one_cache_salt_secret(rendered: dict[str, list[Obj]], overlay: str) -> None:
    spec = one(rendered[overlay], "Deployment", "antangelmed-gateway")["spec"]["template"]["spec"]
    env = {e["name"]: e for c in spec["containers"] for e in c.get("env", [])}
    ref = env["ANGEL_CACHE_SALT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "antangelmed-cache-salt", "key": "secret"}


# ------------------------------------------------------------------------------------------------
# production-inference-pool: InferencePool + llm-d endpoint picker


def test_pool_replaces_the_router(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production-inference-pool"]
    assert not [o for o in objs if o["metadata"]["name"] == ROUTER]
    assert not any(ROUTER in yaml.safe_dump(o) for o in objs)
    # Everything else of production is there.
    prod = {
        (o["kind"], o["metadata"]["name"]) for o in rendered["production"] if o["metadata"]["name"] != ROUTER
    }
    assert prod <= {(o["kind"], o["metadata"]["name"]) for o in objs}


def test_pool_selects_the_engines_and_names_its_picker(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production-inference-pool"]
    pool = one(objs, "InferencePool", "antangelmed-engines")["spec"]
    engine = one(objs, "Deployment", ENGINE)
    assert _labels_match(pool["selector"]["matchLabels"], engine["spec"]["template"]["metadata"]["labels"])
    for name in ("antangelmed-gateway", "antangelmed-epp"):
        assert not _labels_match(
            pool["selector"]["matchLabels"],
            one(objs, "Deployment", name)["spec"]["template"]["metadata"]["labels"],
        )
    engine_port = next(p["containerPort"] for p in _engine_container(objs)["ports"] if p["name"] == "http")
    assert pool["targetPorts"] == [{"number": engine_port}]
    picker = pool["endpointPickerRef"]
    svc = one(objs, "Service", picker["name"])
    grpc = next(p for p in svc["spec"]["ports"] if p["port"] == picker["port"]["number"])
    assert grpc["appProtocol"] == "http2"  # Envoy's ext-proc is gRPC
    epp = one(objs, "Deployment", "antangelmed-epp")["spec"]["template"]["spec"]["containers"][0]
    assert _flag(epp["args"], "--pool-name") == ["antangelmed-engines"]
    assert _flag(epp["args"], "--pool-group") == ["inference.networking.k8s.io"]
    assert grpc["targetPort"] in {p["name"] for p in epp["ports"]}
    assert re.fullmatch(r"ghcr\.io/llm-d/llm-d-inference-scheduler:v\d+\.\d+\.\d+", epp["image"])


def test_pool_route_and_picker_config(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production-inference-pool"]
    route = one(objs, "HTTPRoute", "antangelmed-inference")["spec"]
    gateway = one(objs, "Gateway", "antangelmed-inference")["spec"]
    (parent,) = route["parentRefs"]
    assert parent["sectionName"] in {listener["name"] for listener in gateway["listeners"]}
    backends = [b for r in route["rules"] for b in r["backendRefs"]]
    assert {
        "group": "inference.networking.k8s.io",
        "kind": "InferencePool",
        "name": "antangelmed-engines",
    } in backends
    generation = next(r for r in route["rules"] if r["backendRefs"][0].get("kind") == "InferencePool")
    assert generation["timeouts"]["request"] == "900s"  # long streams are not cut by the proxy
    cm = next(
        c for c in find(objs, "ConfigMap") if c["metadata"]["name"].startswith("antangelmed-epp-config")
    )
    config = yaml.safe_load(cm["data"]["epp-config.yaml"])
    declared = {p["type"] for p in config["plugins"]}
    used = {p["pluginRef"] for profile in config["schedulingProfiles"] for p in profile["plugins"]}
    assert used == declared and "prefix-cache-scorer" in declared


def test_pool_path_is_gateway_proxy_engines(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["production-inference-pool"]
    assert reaches(objs, GATEWAY_POD, INFERENCE_PROXY_POD, 80)
    assert reaches(objs, INFERENCE_PROXY_POD, ENGINE_POD, 8000)
    assert reaches(objs, INFERENCE_PROXY_POD, EPP_POD, 9002)
    assert reaches(objs, EPP_POD, ENGINE_POD, 8000)  # it reads the engines' /metrics
    assert not reaches(objs, GATEWAY_POD, ENGINE_POD, 8000)
    assert not ingress_allowed(objs, INFERENCE_PROXY_POD, 80, {"app": "curl"}, "antangelmed")
    assert not ingress_allowed(objs, EPP_POD, 9002, GATEWAY_POD, "antangelmed")
