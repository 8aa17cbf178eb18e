"""Hardening fixtures: real processes only (the gateway `python -m server` in front of the stand-in).

One echo-mode stand-in and one gateway per module; the gateway's SQLite database holds a live, a revoked
and an expired key, and a second database (another deployment) holds a key this gateway must refuse.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.db import Database
from server.keys import KeyStore
from tests.support.procs import TEST_KEY, Proc, start_gateway, start_standin

MODEL = "angel-standin"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
ERROR_FIELDS = {"message", "type", "param", "code"}


@dataclass
class Keys:
    live: str
    revoked: str
    expired: str
    other_deployment: str


def assert_openai_error(r: httpx.Response, status: int | None = None, code: str | None = None) -> dict:
    """The error body is OpenAI's shape with a string code (null only for an unknown path or method, as
    OpenAI's); returns the inner object."""
    if status is not None:
        assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    err = r.json()["error"]
    assert set(err) == ERROR_FIELDS, err
    if r.status_code in (404, 405) and err["code"] is None:
        assert err["type"] == "invalid_request_error", err
    else:
        assert isinstance(err["code"], str) and err["code"], err
    assert isinstance(err["message"], str) and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    assert r.headers.get("x-request-id")
    return err


def make_keys(tmp: Path) -> Keys:
    store = KeyStore(Database(f"sqlite:///{tmp / 'gw.db'}"))
    live, _ = store.create("live")
    revoked, _ = store.create("revoked")
    store.revoke("revoked")
    expired, _ = store.create("expired", expires_at=time.time() - 60)
    other, _ = KeyStore(Database(f"sqlite:///{tmp / 'other-deployment.db'}")).create("live")
    return Keys(live, revoked, expired, other)


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    p = start_standin(tmp_path_factory.mktemp("echo"), mode="echo", chunks=16)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def gw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gw")


@pytest.fixture(scope="module")
def keys(gw_dir: Path) -> Keys:
    return make_keys(gw_dir)


@pytest.fixture(scope="module")
def gateway(echo: Proc, gw_dir: Path, keys: Keys) -> Iterator[Proc]:
    p = start_gateway(gw_dir, echo.url, ANGEL_LOG_LEVEL="info", ANGEL_UPSTREAM_READ_TIMEOUT="5")
    yield p
    p.stop()


def upstream_stats(upstream: Proc) -> dict:
    return httpx.get(upstream.url + "/_stats", timeout=5).json()
