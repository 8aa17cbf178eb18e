"""After-response bookkeeping (server/bookkeeping.py): metrics with bounded labels, token counts, audit
rows and the JSON log line, none of which holds a prompt, an answer or a key."""

from __future__ import annotations

import httpx
import orjson

from server.db import Database
from tests.server.helpers import AUTH, MODEL, chat_body, completion_json, state_of
from tests.support.procs import TEST_KEY


async def test_client_model_names_do_not_become_metric_labels(gw):
    for i in range(3):
        await gw.post("/v1/chat/completions", json=chat_body(model=f"scanner-{i}"), headers=AUTH)
    text = (await gw.get("/metrics")).text
    assert "scanner-" not in text
    assert 'gateway_requests_total{model="",route="/v1/chat/completions",status="404"} 3.0' in text


async def test_metrics_carry_the_contract_names_and_counts(gw, upstream):
    await gw.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    await gw.post("/v1/chat/completions", json=chat_body())  # auth failure
    text = (await gw.get("/metrics")).text
    for name in (
        "gateway_requests_total",
        "gateway_request_duration_seconds",
        "gateway_time_to_first_token_seconds",
        "gateway_overhead_seconds",
        "gateway_tokens_total",
        "gateway_inflight_requests",
        "gateway_ratelimit_rejections_total",
        "gateway_auth_failures_total",
        "gateway_upstream_errors_total",
        "gateway_safety_events_total",
    ):
        assert f"# TYPE {name}" in text or f"# TYPE {name.removesuffix('_total')}" in text, name
    assert f'gateway_requests_total{{model="{MODEL}",route="/v1/chat/completions",status="200"}} 1.0' in text
    assert f'gateway_tokens_total{{kind="prompt",model="{MODEL}"}} 5.0' in text
    assert f'gateway_tokens_total{{kind="completion",model="{MODEL}"}} 3.0' in text
    assert 'gateway_auth_failures_total{reason="missing"} 1.0' in text


async def test_audit_rows_hold_no_prompt_answer_or_key(make_gateway, tmp_path, upstream):
    gw = make_gateway()
    secret_prompt = "my private symptom zebra-42"
    upstream.answer = lambda r: httpx.Response(200, json=completion_json("secret answer quokka-7"))
    r = await gw.post(
        "/v1/chat/completions",
        json=chat_body(messages=[{"role": "user", "content": secret_prompt}]),
        headers={**AUTH, "x-request-id": "audit-1"},
    )
    assert r.status_code == 200
    await gw.post("/v1/chat/completions", json=chat_body(), headers={"x-request-id": "audit-2"})
    state = state_of(gw)
    state.audit.close()  # flush the batch writer
    rows = Database(f"sqlite:///{tmp_path}/gw.db").fetchall(
        "SELECT request_id, key_name, route, model, status, prompt_tokens, completion_tokens FROM audit_log "
        "ORDER BY ts"
    )
    assert rows == [
        ("audit-1", "env-key-0", "/v1/chat/completions", MODEL, 200, 5, 3),
        ("audit-2", None, "/v1/chat/completions", None, 401, None, None),
    ]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gw.db*"))
    for secret in (secret_prompt, "quokka-7", TEST_KEY):
        assert secret.encode() not in raw


async def test_logs_never_hold_content_or_keys(gw, upstream, caplog):
    import logging

    caplog.set_level(logging.INFO)
    upstream.answer = lambda r: httpx.Response(200, json=completion_json("answer-text-pelican"))
    await gw.post(
        "/v1/chat/completions",
        json=chat_body(messages=[{"role": "user", "content": "prompt-text-heron"}]),
        headers=AUTH,
    )
    from server.logs import JsonFormatter

    lines = [JsonFormatter().format(rec) for rec in caplog.records]
    request_lines = [orjson.loads(line) for line in lines if '"msg":"request"' in line]
    assert request_lines and request_lines[0]["status"] == 200 and request_lines[0]["key"] == "env-key-0"
    assert request_lines[0]["prompt_tokens"] == 5
    joined = "\n".join(lines)
    for secret in ("prompt-text-heron", "answer-text-pelican", TEST_KEY):
        assert secret not in joined
