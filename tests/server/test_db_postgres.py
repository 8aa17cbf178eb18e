"""The key store and audit log on a real PostgreSQL server (ANGEL_DATABASE_URL=postgresql://...)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from server.db import Database
from tests.server.helpers import chat_body
from tests.support.procs import REPO, Proc, gateway_env, start_gateway, start_postgres

pytest.importorskip("psycopg", reason="PostgreSQL support needs the postgres extra (psycopg)")


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    p = start_postgres(tmp_path_factory.mktemp("pg"))
    yield p
    p.stop()


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = gateway_env("http://127.0.0.1:1", REPO / "unused.db", ANGEL_DATABASE_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "server", "keys", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_keys_and_audit_on_postgres(postgres: Proc, standin: Proc, tmp_path) -> None:
    r = cli(postgres.url, "create", "--name", "pg-key", "--rpm", "100", "--json")
    assert r.returncode == 0, r.stderr
    key = orjson.loads(r.stdout)["key"]
    gw = start_gateway(tmp_path, standin.url, ANGEL_DATABASE_URL=postgres.url, ANGEL_KEY_CACHE_SECONDS="0.5")
    try:
        h = {"Authorization": f"Bearer {key}", "x-request-id": "pg-req-1"}
        r = httpx.post(gw.url + "/v1/chat/completions", json=chat_body(), headers=h)
        assert r.status_code == 200 and r.headers["x-ratelimit-limit-requests"] == "100"
        assert cli(postgres.url, "revoke", "pg-key").returncode == 0
        time.sleep(0.7)
        r = httpx.post(gw.url + "/v1/chat/completions", json=chat_body(), headers=h)
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    finally:
        gw.stop()  # flushes the audit writer
    db = Database(postgres.url)
    rows = db.fetchall("SELECT request_id, key_name, status FROM audit_log ORDER BY ts")
    assert rows == [("pg-req-1", "pg-key", 200), ("pg-req-1", None, 401)]
    stored = db.fetchall("SELECT key_hash FROM api_keys WHERE name = ?", ("pg-key",))
    assert stored and stored[0][0] != key and len(stored[0][0]) == 64
    listed = cli(postgres.url, "list", "--json")
    assert [k["name"] for k in orjson.loads(listed.stdout)] == ["pg-key"]
