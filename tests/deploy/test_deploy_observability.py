"""ServiceMonitors, alerts and the Grafana dashboard: valid PromQL on metrics that really exist.

Metric names are checked against the code that exports them: `gateway_*` against `server/`,
`vllm:*` against the installed vLLM package (read as text, not imported: importing vLLM is slow),
`vllm_router_*` against the installed vllm-router's compiled extension (its metric names are strings in it).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path

import promql_parser
import pytest

from tests.deploy.deploy_helpers import GPU_OVERLAYS, REPO, Obj, find, one

# The gateway's metrics, as promised in the project's contract (names others rely on).
CONTRACT_GATEWAY_METRICS = {
    "gateway_requests_total",
    "gateway_request_duration_seconds",
    "gateway_time_to_first_token_seconds",
    "gateway_overhead_seconds",
    "gateway_tokens_total",
    "gateway_inflight_requests",
    "gateway_safety_events_total",
}
# vLLM metrics the dashboard must show: load, latency, throughput, cache and speculation.
DASHBOARD_VLLM_METRICS = {
    "vllm:num_requests_waiting",
    "vllm:num_requests_running",
    "vllm:time_to_first_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:generation_tokens_total",
    "vllm:prompt_tokens_total",
    "vllm:kv_cache_usage_perc",
    "vllm:spec_decode_num_accepted_tokens_total",
}
# The router's metrics the dashboard must show: engine health, where requests go and why, failures.
DASHBOARD_ROUTER_METRICS = {
    "vllm_router_worker_health",
    "vllm_router_processed_requests_total",
    "vllm_router_prefix_routing_decisions_total",
    "vllm_router_running_requests",
    "vllm_router_retries_exhausted_total",
    "vllm_router_cb_state",
}
# Series suffixes Prometheus clients add to a metric's declared name.
_SERIES_SUFFIXES = ("_bucket", "_sum", "_count", "_created")
# Grafana's variables, replaced by plain values so the expressions parse as PromQL.
_GRAFANA_VARS = {"$__rate_interval": "5m", "$namespace": "antangelmed"}


def _declared(source_texts: Iterator[str], prefix: str) -> set[str]:
    pattern = re.compile(r"""["'](""" + re.escape(prefix) + r"""[a-zA-Z0-9_:]+)["']""")
    return {m for text in source_texts for m in pattern.findall(text)}


@functools.cache
def gateway_declared() -> set[str]:
    return _declared((p.read_text() for p in (REPO / "server").rglob("*.py")), "gateway_")


@functools.cache
def vllm_declared() -> set[str] | None:
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return _declared((p.read_text(errors="ignore") for p in root.rglob("*.py")), "vllm:")


@functools.cache
def router_binary() -> bytes | None:
    """The compiled extension of the installed vllm-router (its metric names are literals in it)."""
    spec = importlib.util.find_spec("vllm_router_rs")
    return Path(spec.origin).read_bytes() if spec is not None and spec.origin else None


def router_exported(name: str, binary: bytes) -> bool:
    stems = {name} | {name.removesuffix(s) for s in _SERIES_SUFFIXES if name.endswith(s)}
    return any(stem.encode() in binary for stem in stems)


def exported(name: str, declared: set[str]) -> bool:
    """True when a series name is produced by a declared metric (histogram/counter suffixes)."""
    candidates = {name} | {name.removesuffix(s) for s in _SERIES_SUFFIXES if name.endswith(s)}
    candidates |= {c.removesuffix("_total") for c in candidates if c.endswith("_total")}
    return bool(candidates & declared)


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects (parsing it proves the expression is valid)."""
    for var, value in _GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    names: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
            return
        for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None:
                walk(child)
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(promql_parser.parse(expr))
    return names


def _alert_rules(objs: list[Obj]) -> list[Obj]:
    rule = one(objs, "PrometheusRule", "antangelmed")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def _dashboard(objs: list[Obj]) -> dict:
    cm = one(objs, "ConfigMap", "antangelmed-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    return json.loads(cm["data"]["antangelmed.json"])


def _dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _check_names(names: set[str]) -> list[str]:
    """Names with a known prefix that no code declares (vLLM's skipped when it is not installed)."""
    sources = {"gateway_": gateway_declared(), "vllm:": vllm_declared()}
    unknown = [
        n
        for n in sorted(names)
        for prefix, declared in sources.items()
        if n.startswith(prefix) and declared is not None and not exported(n, declared)
    ]
    binary = router_binary()
    if binary is not None:
        unknown += [
            n for n in sorted(names) if n.startswith("vllm_router_") and not router_exported(n, binary)
        ]
    return unknown


# ------------------------------------------------------------------------------------------------


def test_metric_name_helpers_catch_unknown_names() -> None:
    assert metric_names('sum(rate(foo_total{a="b"}[5m])) / on() absent(up)') == {"foo_total", "up"}
    assert exported("gateway_request_duration_seconds_bucket", {"gateway_request_duration_seconds"})
    assert exported("vllm:prompt_tokens_total", {"vllm:prompt_tokens"})
    assert not exported("gateway_made_up_total", {"gateway_requests_total"})
    with pytest.raises(ValueError):
        metric_names("sum(rate(foo[5m])")


def test_gateway_exports_the_contract_metrics() -> None:
    if not (REPO / "server" / "metrics.py").exists():
        pytest.fail("server/metrics.py (the gateway's metrics) is missing")
    missing = {m for m in CONTRACT_GATEWAY_METRICS if not exported(m, gateway_declared())}
    assert not missing, missing


def test_vllm_metrics_found_in_installed_vllm() -> None:
    vllm = vllm_declared()
    if vllm is None:
        pytest.skip("vLLM is not installed here: its metric names cannot be checked")
    assert {m for m in DASHBOARD_VLLM_METRICS if not exported(m, vllm)} == set()


@pytest.mark.parametrize("overlay", GPU_OVERLAYS)
def test_alert_expressions_parse_and_use_existing_metrics(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    rules = _alert_rules(rendered[overlay])
    names = set().union(*(metric_names(r["expr"]) for r in rules))
    assert not _check_names(names), _check_names(names)
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning")
        assert r["annotations"]["summary"]


def test_alerts_cover_what_the_issue_lists(rendered: dict[str, list[Obj]]) -> None:
    rules = {r["alert"]: r["expr"] for r in _alert_rules(rendered["production"])}

    def uses(metric: str) -> list[str]:
        return [a for a, e in rules.items() if metric in metric_names(e)]

    assert any('service="antangelmed-engine"' in rules[a] for a in uses("up")), "engine down"
    assert uses("vllm:num_requests_waiting"), "queue growing"
    ttft = uses("vllm:time_to_first_token_seconds_bucket") + uses(
        "gateway_time_to_first_token_seconds_bucket"
    )
    assert ttft and all("histogram_quantile(0.95" in rules[a] for a in ttft), "TTFT p95"
    assert any('status=~"5.."' in rules[a] for a in uses("gateway_requests_total")), "error rate"
    assert uses("gateway_safety_events_total"), "safety-event spikes"


def test_dashboard_parses_and_uses_existing_metrics(rendered: dict[str, list[Obj]]) -> None:
    dashboard = _dashboard(rendered["h200-fp8-eagle3"])
    exprs = _dashboard_exprs(dashboard)
    names = set().union(*(metric_names(e) for e in exprs))
    assert not _check_names(names), _check_names(names)
    # It covers both the engine and the gateway.
    covered_gateway = {
        m for m in CONTRACT_GATEWAY_METRICS if any(n.startswith(m.removesuffix("_total")) for n in names)
    }
    assert covered_gateway == CONTRACT_GATEWAY_METRICS
    covered_vllm = {
        m for m in DASHBOARD_VLLM_METRICS if any(n.startswith(m.removesuffix("_total")) for n in names)
    }
    assert covered_vllm == DASHBOARD_VLLM_METRICS
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"]


def test_dashboard_file_is_what_the_configmap_ships(rendered: dict[str, list[Obj]]) -> None:
    """The JSON file can also be imported into Grafana by hand: it is the same dashboard."""
    path = REPO / "deploy/kustomize/components/monitoring/dashboards/antangelmed.json"
    assert json.loads(path.read_text()) == _dashboard(rendered["production"])


@pytest.mark.parametrize("overlay", GPU_OVERLAYS)
def test_service_monitors_select_services_and_ports(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    services = find(objs, "Service")
    monitored = set()
    for sm in find(objs, "ServiceMonitor"):
        sel = sm["spec"]["selector"]["matchLabels"]
        (svc,) = [s for s in services if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        port_names = {p["name"] for p in svc["spec"]["ports"]}
        assert all(e["port"] in port_names and e["path"] == "/metrics" for e in sm["spec"]["endpoints"])
        monitored.add(svc["metadata"]["name"])
    # The fleet with vllm-router also scrapes the router (components/router).
    expected = {"antangelmed-engine", "antangelmed-gateway"} | (
        {"antangelmed-router"} if overlay == "production" else set()
    )
    assert monitored == expected


def test_keda_query_parses_and_uses_vllm_queue_metric(rendered: dict[str, list[Obj]]) -> None:
    so = one(rendered["production"], "ScaledObject", "antangelmed-engine")
    names = metric_names(so["spec"]["triggers"][0]["metadata"]["query"])
    assert names == {"vllm:num_requests_waiting"} and not _check_names(names)


def _router_rules(objs: list[Obj]) -> list[Obj]:
    rule = one(objs, "PrometheusRule", "antangelmed-router")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def test_router_metric_names_are_checked_against_the_installed_router() -> None:
    binary = router_binary()
    if binary is None:
        pytest.skip("vllm-router is not installed here: its metric names cannot be checked")
    assert router_exported("vllm_router_worker_health", binary)
    assert router_exported("vllm_router_processed_requests_total", binary)
    assert not router_exported("vllm_router_made_up_total", binary)
    assert _check_names({"vllm_router_made_up_total"}) == ["vllm_router_made_up_total"]


def test_router_alerts_parse_use_router_metrics_and_cover_outages(rendered: dict[str, list[Obj]]) -> None:
    rules = _router_rules(rendered["production"])
    names = set().union(*(metric_names(r["expr"]) for r in rules))
    assert not _check_names(names), _check_names(names)
    by_name = {r["alert"]: r for r in rules}
    assert 'service="antangelmed-router"' in by_name["AntAngelMedRouterDown"]["expr"]
    assert "vllm_router_worker_health" in metric_names(by_name["AntAngelMedRouterNoHealthyEngine"]["expr"])
    assert {"vllm_router_cb_state", "vllm_router_retries_exhausted_total"} <= names
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning") and r["annotations"]["summary"]
    # Overlays without a router carry none of its alerts (they would fire on its absence).
    for overlay in ("h200-fp8-eagle3", "bf16-tp4", "production-inference-pool"):
        assert not find(rendered[overlay], "PrometheusRule", "antangelmed-router")


def test_dashboard_shows_the_router(rendered: dict[str, list[Obj]]) -> None:
    exprs = _dashboard_exprs(_dashboard(rendered["production"]))
    names = set().union(*(metric_names(e) for e in exprs))
    covered = {
        m for m in DASHBOARD_ROUTER_METRICS if any(n.startswith(m.removesuffix("_total")) for n in names)
    }
    assert covered == DASHBOARD_ROUTER_METRICS
    # and the engines' prefix-cache hit rate, what the router's policy is for
    assert {"vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"} <= names
