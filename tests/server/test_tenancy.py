"""Per-tenant prefix-cache isolation (server/tenancy.py): the `cache_salt` every request carries upstream.

Salts are unguessable and stable per tenant, differ between tenants, are accepted by vLLM's own validator,
replace whatever the client sent, and follow ANGEL_CACHE_ISOLATION (tenant / key / off). The keys CLI and
store carry the `tenant` field, and a key database made before it gains the column. The engine's side
(prefix-cache hits really isolated) is checked against real vLLM engines in tests/e2e/test_fleet.py.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from server.__main__ import main as cli
from server.db import Database
from server.keys import KeyRecord, KeyStore
from server.settings import Settings
from server.tenancy import CACHE_SALT, CacheSalter, Isolation, derive_salt, tenant_identity, vllm_accepts_salt
from tests.server.helpers import AUTH, Upstream, chat_body, db_key, state_of

SECRET = "cache-salt-secret-" + "7d1f0a9b3c" * 3
SALT = re.compile(r"^[A-Za-z0-9_-]{43}$")


def key(id: str = "k1", tenant: str | None = None) -> KeyRecord:
    return KeyRecord(id=id, name=id, key_prefix="sk-angel-xxxx", created_at=0.0, tenant=tenant)


# ------------------------------------------------------------------------------------------------
# The salt itself


def test_salt_is_a_keyed_hash_of_the_tenant() -> None:
    a = derive_salt(SECRET.encode(), "tenant:clinic-a")
    assert SALT.match(a)  # 256 bits, URL-safe base64
    assert a == derive_salt(SECRET.encode(), "tenant:clinic-a")  # stable: replicas and restarts agree
    assert a != derive_salt(SECRET.encode(), "tenant:clinic-b")
    assert a != derive_salt(b"another-secret-of-enough-length", "tenant:clinic-a")  # needs the secret
    assert "clinic" not in a


def test_every_salt_passes_vllms_own_validator() -> None:
    protocol = pytest.importorskip("vllm.entrypoints.generate.base.protocol")
    salter = CacheSalter(Isolation.TENANT, SECRET.encode())
    for i in range(200):
        salt = salter.salt_for(key(f"k{i}", tenant=f"t{i}" if i % 2 else None))
        protocol.validate_cache_salt(salt)  # raises on a salt vLLM would refuse
        assert vllm_accepts_salt(salt)
    # and the gateway's restatement of vLLM's rule refuses what vLLM refuses
    for bad in ("", "a/b", "a@b", "a\\b", "a\x00b", "x" * 129, 7, None):
        assert not vllm_accepts_salt(bad)
        with pytest.raises(Exception):
            protocol.validate_cache_salt(bad if bad is not None else "")


def test_tenant_identity_by_mode() -> None:
    shared, alone = key("k1", tenant="clinic-a"), key("k2")
    assert tenant_identity(shared, Isolation.TENANT) == "tenant:clinic-a"
    assert tenant_identity(alone, Isolation.TENANT) == "key:k2"
    assert tenant_identity(shared, Isolation.KEY) == "key:k1"
    assert tenant_identity(shared, Isolation.OFF) is None
    # A tenant named like another key's id is still another tenant.
    assert tenant_identity(key("x", tenant="k2"), Isolation.TENANT) != tenant_identity(
        alone, Isolation.TENANT
    )


def test_apply_replaces_a_client_salt_and_removes_it_when_off() -> None:
    body = {"messages": [], CACHE_SALT: "chosen-by-the-client"}
    salter = CacheSalter("tenant", SECRET.encode())
    salter.apply(body, key("k1", tenant="clinic-a"))
    assert body[CACHE_SALT] == salter.salt_for(key("k9", tenant="clinic-a")) != "chosen-by-the-client"
    body = {"messages": [], CACHE_SALT: "chosen-by-the-client"}
    CacheSalter("off", b"").apply(body, key())
    assert CACHE_SALT not in body


def test_secret_from_settings_is_shared_and_an_unset_one_is_random_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = f"sqlite:///{tmp_path}/s.db"
    one = CacheSalter.from_settings(Settings(database_url=db, cache_salt_secret=SecretStr(SECRET)))
    two = CacheSalter.from_settings(Settings(database_url=db, cache_salt_secret=SecretStr(SECRET)))
    assert one.salt_for(key()) == two.salt_for(key())  # two replicas, one secret: one salt per tenant
    with caplog.at_level(logging.WARNING, logger="angel.tenancy"):
        a = CacheSalter.from_settings(Settings(database_url=db))
        b = CacheSalter.from_settings(Settings(database_url=db))
    assert a.salt_for(key()) != b.salt_for(key())
    assert "ANGEL_CACHE_SALT_SECRET is not set" in caplog.text


@pytest.mark.parametrize(
    "field,value", [("cache_salt_secret", SecretStr("changeme")), ("cache_salt_secret", SecretStr("short"))]
)
def test_settings_refuse_a_weak_secret(field: str, value: object, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(database_url=f"sqlite:///{tmp_path}/s.db", **{field: value})


def test_settings_refuse_an_unknown_isolation_mode(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(database_url=f"sqlite:///{tmp_path}/s.db", cache_isolation="tenants")


# ------------------------------------------------------------------------------------------------
# Through the gateway: what the upstream receives


def _sent_salt(upstream: Upstream) -> str | None:
    return upstream.last_json().get(CACHE_SALT)


async def _salt_of(
    gw: httpx.AsyncClient, upstream: Upstream, bearer: str, path: str, body: dict
) -> str | None:
    r = await gw.post(path, json=body, headers={"Authorization": f"Bearer {bearer}"})
    assert r.status_code == 200, r.text
    return _sent_salt(upstream)


COMPLETION = {"model": "angel-standin", "prompt": "Summarise the discharge letter.", "max_tokens": 4}
RESPONSES = {"model": "angel-standin", "input": "Summarise the discharge letter."}


async def test_every_route_sends_the_tenants_salt_and_never_the_clients(make_gateway, upstream, tmp_path):
    gw = make_gateway(cache_salt_secret=SecretStr(SECRET))
    a1 = db_key(tmp_path, name="a1", tenant="clinic-a")
    a2 = db_key(tmp_path, name="a2", tenant="clinic-a")
    b = db_key(tmp_path, name="b")
    forged = {CACHE_SALT: "forged-salt-of-another-tenant"}
    salts = {
        who: await _salt_of(gw, upstream, k, "/v1/chat/completions", chat_body(**forged))
        for who, k in (("a1", a1), ("a2", a2), ("b", b))
    }
    assert all(SALT.match(s) for s in salts.values())
    assert salts["a1"] == salts["a2"] != salts["b"]  # one tenant, two keys: one prefix cache
    # The same salt on the other routes, streamed or not.
    assert await _salt_of(gw, upstream, a2, "/v1/completions", {**COMPLETION, **forged}) == salts["a1"]
    stream = chat_body(stream=True, **forged)
    upstream.answer = lambda r: httpx.Response(
        200, text="data: [DONE]\n\n", headers={"content-type": "text/event-stream"}
    )
    assert await _salt_of(gw, upstream, a1, "/v1/chat/completions", stream) == salts["a1"]
    upstream.answer = lambda r: httpx.Response(200, json=_response_json())
    assert await _salt_of(gw, upstream, b, "/v1/responses", {**RESPONSES, **forged}) == salts["b"]
    # A dev key from ANGEL_API_KEYS is a tenant of its own.
    upstream.answer = lambda r: httpx.Response(200, json={"choices": [], "usage": {}})
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert r.status_code == 200 and _sent_salt(upstream) not in salts.values()


async def test_a_large_body_parsed_off_the_event_loop_gets_the_salt_too(make_gateway, upstream, tmp_path):
    from server.offload import OFFLOAD_BYTES

    gw = make_gateway(cache_salt_secret=SecretStr(SECRET), safety_enabled=False)
    a = db_key(tmp_path, name="a", tenant="clinic-a")
    small = await _salt_of(gw, upstream, a, "/v1/chat/completions", chat_body())
    big = chat_body(messages=[{"role": "user", "content": "record " * (OFFLOAD_BYTES // 6)}], cache_salt="x")
    assert await _salt_of(gw, upstream, a, "/v1/chat/completions", big) == small
    assert upstream.last_json()["messages"][0]["content"].startswith("record record")


async def test_isolation_per_key_and_off(make_gateway, upstream, tmp_path):
    a1 = db_key(tmp_path, name="a1", tenant="clinic-a")
    a2 = db_key(tmp_path, name="a2", tenant="clinic-a")
    per_key = make_gateway(cache_isolation="key", cache_salt_secret=SecretStr(SECRET))
    s1 = await _salt_of(per_key, upstream, a1, "/v1/chat/completions", chat_body())
    s2 = await _salt_of(per_key, upstream, a2, "/v1/chat/completions", chat_body())
    assert s1 and s2 and s1 != s2
    off = make_gateway(cache_isolation="off")
    assert state_of(off).cache_salter.mode is Isolation.OFF
    body = chat_body(**{CACHE_SALT: "client-salt"})
    assert await _salt_of(off, upstream, a1, "/v1/chat/completions", body) is None


def _response_json() -> dict:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": "angel-standin",
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "ok", "annotations": []}],
            }
        ],
        "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
    }


# ------------------------------------------------------------------------------------------------
# Keys: the tenant field in the store and the CLI


def test_cli_creates_and_lists_a_tenant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    cli(["keys", "create", "--name", "ward-3", "--tenant", "clinic-a", "--json", "--database-url", db])
    created = json.loads(capsys.readouterr().out)
    assert created["tenant"] == "clinic-a" and created["key"].startswith("sk-angel-")
    cli(["keys", "create", "--name", "solo", "--database-url", db])
    capsys.readouterr()
    cli(["keys", "list", "--json", "--database-url", db])
    listed = {k["name"]: k["tenant"] for k in json.loads(capsys.readouterr().out)}
    assert listed == {"ward-3": "clinic-a", "solo": None}
    cli(["keys", "list", "--database-url", db])
    table = capsys.readouterr().out
    assert "TENANT" in table.splitlines()[0] and "clinic-a" in table


@pytest.mark.parametrize("bad", ["", "-lead", "a b", "a:b", "a/b", "x" * 65])
def test_cli_refuses_a_bad_tenant_name(tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(
            ["keys", "create", "--name", "k", "--tenant", bad, "--database-url", f"sqlite:///{tmp_path}/k.db"]
        )
    assert exc.value.code == 2 and "--tenant" in capsys.readouterr().err


def test_a_key_database_from_before_tenants_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the api_keys table as released before the tenant field
        conn.execute(
            "CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, "
            "key_prefix TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION, "
            "revoked_at DOUBLE PRECISION, allowed_models TEXT, rpm INTEGER, tpm INTEGER, max_tokens INTEGER, "
            "safety_profile TEXT NOT NULL DEFAULT 'patient')"
        )
        conn.execute(
            "INSERT INTO api_keys (id, name, key_hash, key_prefix, created_at) "
            "VALUES ('old1', 'old', 'h', 'p', 0)"
        )
    store = KeyStore(Database(f"sqlite:///{path}"))
    KeyStore(Database(f"sqlite:///{path}"))  # a second process starting: no duplicate column
    assert store.by_hash("h").tenant is None
    _, rec = store.create("new", tenant="clinic-a")
    assert store.by_hash(rec.key_hash).tenant == "clinic-a"
