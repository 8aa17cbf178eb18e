"""Every overlay renders with `kubectl kustomize`, and every rendered object is schema-valid.

Kubernetes objects are checked against the official OpenAPI-derived JSON schemas shipped offline
by `kubernetes-validate`, in strict mode (unknown fields are errors), for the oldest and newest
Kubernetes versions we support. Custom resources (Prometheus Operator, KEDA, Gateway API and its
Inference Extension) have no upstream schemas there: they are checked against the schemas in
crd_schemas/, written for exactly the fields this project uses (also strict); the InferencePool's is
its published v1 CRD's whole spec.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.deploy_helpers import OVERLAYS, Obj, one

# The manifests target these Kubernetes versions (the README states the same range).
K8S_VERSIONS = ("1.32.0", "1.37.0")
CRD_SCHEMA_DIR = Path(__file__).parent / "crd_schemas"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.json",
    # Gateway API Inference Extension and Gateway API (overlays/production-inference-pool)
    ("inference.networking.k8s.io/v1", "InferencePool"): "inferencepool.json",
    ("gateway.networking.k8s.io/v1", "Gateway"): "gateway.json",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute.json",
}


def _crd_schema(obj: Obj) -> dict | None:
    name = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    return None if name is None else json.loads((CRD_SCHEMA_DIR / name).read_text())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_objects(rendered: dict[str, list[Obj]], overlay: str) -> None:
    kinds = {o["kind"] for o in rendered[overlay]}
    assert {"Namespace", "Deployment", "Service", "NetworkPolicy", "ConfigMap"} <= kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_valid_for_kubernetes(rendered: dict[str, list[Obj]], overlay: str, version: str) -> None:
    errors = []
    for obj in rendered[overlay]:
        if _crd_schema(obj) is not None:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{obj['apiVersion']} {obj['kind']}: no schema (unknown kind)")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_valid(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for obj in rendered[overlay]:
        schema = _crd_schema(obj)
        if schema is not None:
            jsonschema.validate(obj, schema)


def test_crd_schemas_reject_unknown_fields(rendered: dict[str, list[Obj]]) -> None:
    """The hand-written CRD schemas are strict: a misspelt field would not slip through."""
    seen = set()
    for obj in rendered["production"] + rendered["production-inference-pool"]:
        schema = _crd_schema(obj)
        if schema is None:
            continue
        broken = json.loads(json.dumps(obj))
        broken["spec"]["unknownField"] = True
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
        seen.add(obj["kind"])
    assert {
        "ServiceMonitor",
        "PrometheusRule",
        "ScaledObject",
        "InferencePool",
        "Gateway",
        "HTTPRoute",
    } <= seen


def test_inference_pool_schema_catches_what_the_crd_refuses(rendered: dict[str, list[Obj]]) -> None:
    """Deeper than unknown fields: the CRD's limits and enums are in the offline schema too."""
    pool = one(rendered["production-inference-pool"], "InferencePool", "antangelmed-engines")
    schema = _crd_schema(pool)
    assert schema is not None
    for path, value in (
        (("spec", "targetPorts"), []),  # at least one port
        (("spec", "targetPorts"), [{"number": 70000}]),
        (("spec", "endpointPickerRef", "failureMode"), "FailSometimes"),
        (("spec", "selector", "matchLabels"), {"app": "-bad-"}),
        (("spec", "endpointPickerRef", "port"), None),  # a Service referent needs its port
    ):
        broken = json.loads(json.dumps(pool))
        *parents, leaf = path
        node = broken
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_validator_rejects_a_broken_deployment(rendered: dict[str, list[Obj]]) -> None:
    """Guards the guard: the schema check really fails on a wrong field or type."""
    deployment = next(o for o in rendered["cpu-demo"] if o["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limts"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)
