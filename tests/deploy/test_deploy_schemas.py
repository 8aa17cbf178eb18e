"""Every overlay renders with `kubectl kustomize`, and every rendered object is schema-valid.

Kubernetes objects are checked against the official OpenAPI-derived JSON schemas shipped offline
by `kubernetes-validate`, in strict mode (unknown fields are errors), for the oldest and newest
Kubernetes versions we support. Custom resources (Prometheus Operator, KEDA) have no upstream
schemas there: they are checked against the schemas in crd_schemas/, written for exactly the
fields this project uses (also strict).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.deploy_helpers import OVERLAYS, Obj

# The manifests target these Kubernetes versions (the README states the same range).
K8S_VERSIONS = ("1.32.0", "1.37.0")
CRD_SCHEMA_DIR = Path(__file__).parent / "crd_schemas"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.json",
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
    for obj in rendered["production"]:
        schema = _crd_schema(obj)
        if schema is None:
            continue
        broken = json.loads(json.dumps(obj))
        broken["spec"]["unknownField"] = True
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
