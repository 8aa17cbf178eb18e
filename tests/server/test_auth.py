"""Bearer-key authentication (server/auth.py) through the in-process gateway: every refusal is a 401
`invalid_api_key` that never reaches the upstream, and a key store that cannot be read fails closed."""

from __future__ import annotations

import time

import pytest

from server.db import Database
from server.keys import KeyStore
from tests.server.helpers import assert_openai_error, chat_body, db_key, state_of
from tests.support.procs import TEST_KEY


async def test_missing_key_is_401_and_never_reaches_the_upstream(gw, upstream):
    r = await gw.post("/v1/chat/completions", json=chat_body())
    err = assert_openai_error(r, 401, "invalid_api_key")
    assert err["type"] == "authentication_error"
    assert upstream.requests == []


@pytest.mark.parametrize(
    "header",
    ["Basic abc", "Bearer", "Bearer    ", f"Token {TEST_KEY}", f"Bearer {TEST_KEY} x", "Bearer " + "x" * 600],
)
async def test_garbled_authorization_header_is_401(gw, upstream, header):
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": header})
    assert_openai_error(r, 401, "invalid_api_key")
    assert upstream.requests == []


async def test_unknown_key_is_401(gw):
    r = await gw.get("/v1/models", headers={"Authorization": "Bearer sk-angel-not-a-real-key-at-all-xyz"})
    assert_openai_error(r, 401, "invalid_api_key")


async def test_revoked_key_is_401_on_the_next_request(make_gateway, tmp_path):
    key = db_key(tmp_path, name="rev")
    gw = make_gateway(key_cache_seconds=0)
    assert (
        await gw.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"})
    ).status_code == 200
    assert KeyStore(Database(f"sqlite:///{tmp_path}/gw.db")).revoke("rev") == 1
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"})
    assert "revoked" in assert_openai_error(r, 401, "invalid_api_key")["message"]


async def test_expired_key_is_401(make_gateway, tmp_path):
    key = db_key(tmp_path, name="old", expires_at=time.time() - 1)
    r = await make_gateway().post(
        "/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"}
    )
    assert "expired" in assert_openai_error(r, 401, "invalid_api_key")["message"]


async def test_key_store_down_fails_closed_with_503(make_gateway, tmp_path):
    key = db_key(tmp_path, name="k1")
    gw = make_gateway()
    state_of(gw).resolver.store.db.close()  # the database goes away
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {key}"})
    assert_openai_error(r, 503, "key_store_unavailable")
