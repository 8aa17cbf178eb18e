"""Fixtures for the safety layer's tests: the built-in engine and engines built from small policies."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from server.safety import SafetyEngine

# benchmarks/safety_eval.py, the scorer and the list of evaluation sets (benchmarks/ is no package)
REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("safety_eval", REPO / "benchmarks" / "safety_eval.py")
safety_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(safety_eval)


@pytest.fixture(scope="session")
def engine() -> SafetyEngine:
    return SafetyEngine.from_policy_file(None)


@pytest.fixture
def make_engine(tmp_path: Path) -> Callable[..., SafetyEngine]:
    """An engine whose single profile `p` uses the given per-category actions and output settings."""

    def build(
        output: dict | None = None, speaker_roles: list[str] | None = None, **actions: str | dict
    ) -> SafetyEngine:
        profile: dict = {c: (a if isinstance(a, dict) else {"action": a}) for c, a in actions.items()}
        if output is not None:
            profile["output"] = output
        if speaker_roles is not None:
            profile["speaker_roles"] = speaker_roles
        path = tmp_path / "policy.yaml"
        path.write_text(
            yaml.safe_dump({"default_profile": "p", "profiles": {"p": profile}}), encoding="utf-8"
        )
        return SafetyEngine.from_policy_file(str(path))

    return build


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]
