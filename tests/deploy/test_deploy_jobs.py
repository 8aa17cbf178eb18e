"""One-off manifests under deploy/jobs/ meet the same rules as the overlays' workloads."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.deploy_helpers import REPO, Obj, containers, pod_security_problems, pod_specs

JOB_FILES = sorted((REPO / "deploy" / "jobs").glob("*.yaml"))


def _load(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_there_are_jobs() -> None:
    assert JOB_FILES


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.name)
def test_job_valid_and_secure(path: Path) -> None:
    objs = _load(path)
    for obj in objs:
        kubernetes_validate.validate(obj, "1.32.0", strict=True)
        assert obj["metadata"]["namespace"] == "antangelmed"
    specs = list(pod_specs(objs))
    assert specs
    for workload, spec in specs:
        assert not pod_security_problems(workload, spec)
        for c in containers(spec):
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) <= set(c["resources"]["limits"])
            assert ":" in c["image"] and not c["image"].endswith(":latest")
            for e in c.get("env", []):
                if "TOKEN" in e["name"]:
                    assert "secretKeyRef" in e["valueFrom"]


def test_load_weights_refuses_to_run_without_a_repository() -> None:
    (job,) = _load(REPO / "deploy" / "jobs" / "load-weights.yaml")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert ":?set MODEL_REPO" in c["command"][-1]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/models")
    assert not mount.get("readOnly")  # the one writer of the weights volume
