"""The middleware and error handlers of the app (server/app.py): request ids in, out and upstream, and
OpenAI-shaped 404 and 405 for what no route serves."""

from __future__ import annotations

from tests.server.helpers import AUTH, assert_openai_error, chat_body


async def test_request_id_is_echoed_and_forwarded_upstream(gw, upstream):
    r = await gw.post(
        "/v1/chat/completions", json=chat_body(), headers={**AUTH, "x-request-id": "abc-123.X:9"}
    )
    assert r.headers["x-request-id"] == "abc-123.X:9"
    assert upstream.requests[-1].headers["x-request-id"] == "abc-123.X:9"
    r = await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and upstream.requests[-1].headers["x-request-id"] == rid


async def test_unsafe_request_id_is_replaced_by_a_new_one(gw, upstream):
    r = await gw.post(
        "/v1/chat/completions", json=chat_body(), headers={**AUTH, "x-request-id": 'a b"{}' + "x" * 200}
    )
    assert r.headers["x-request-id"] != "a b" and len(r.headers["x-request-id"]) == 32
    assert upstream.requests[-1].headers["x-request-id"] == r.headers["x-request-id"]


async def test_unknown_path_is_404_and_wrong_method_405_with_openais_null_code(gw):
    r = await gw.get("/v1/nothing-here", headers=AUTH)
    err = assert_openai_error(r, 404, None)
    assert err["type"] == "invalid_request_error" and err["message"] == "Invalid URL (GET /v1/nothing-here)."
    r = await gw.get("/v1/chat/completions", headers=AUTH)
    err = assert_openai_error(r, 405, None)
    assert err["type"] == "invalid_request_error" and "GET /v1/chat/completions" in err["message"]
