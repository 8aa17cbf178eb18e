"""Fixtures for the deployment tests: every kustomize overlay rendered once per session."""

from __future__ import annotations

import pytest

from tests.deploy.deploy_helpers import OVERLAYS, Obj, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """overlay name -> the objects `kubectl kustomize` renders for it."""
    return {name: render(name) for name in OVERLAYS}
