"""How the chat and completion routes drive the safety layer's interface (check_input/check_prompt/
output_guard), in process over a MockTransport upstream.

The rails themselves are tested with the real engine in tests/safety; here a small engine with the
same interface and obvious behaviour checks the gateway's side: headers, block/respond/pass, what goes
upstream, output guards on JSON and streams, metrics and profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import orjson

from server.db import Database
from server.keys import KeyStore
from server.safety.output import Unit
from tests.server.helpers import (
    AUTH,
    MODEL,
    USAGE_CHUNK,
    chat_body,
    chunk,
    completion_json,
    events,
    sse,
    sse_response,
    state_of,
)


@dataclass
class Verdict:
    categories: list[str]
    action: str
    messages: list | None = None
    prompt: str | None = None
    body: dict | None = None  # top-level fields the rails rewrote (tools), as the engine's Verdict has
    response_text: str = ""
    error_message: str = ""
    events: list = field(default_factory=list)


class Guard:
    """Upper-cases, releases text up to the last space (a hold-back window), appends a notice at the end."""

    def __init__(self, verdict: Verdict) -> None:
        self.buf = ""
        self.blocked = False
        self.block_message = "stopped by policy"
        self.events: list = []
        self.notice = " [NOTICE]" if "medical_emergency" in verdict.categories else ""

    def feed(self, text: str) -> str:
        self.buf += text
        if "forbidden" in self.buf:
            self.blocked = True
            self.events.append(("crisis_self_harm", "block"))
            return ""
        cut = self.buf.rfind(" ") + 1
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out.upper()

    def finish(self) -> str:
        out, self.buf = self.buf.upper() + self.notice, ""
        return out

    # the unit interface ResponseGuard drives (logprobs travel as the payload)
    def feed_unit(self, text: str, payload: object = None) -> list[Unit]:
        out = self.feed(text)
        return [Unit(out, payload, out != text)] if out or payload is not None else []

    def finish_units(self) -> list[Unit]:
        out = self.finish()
        return [Unit(out, None, True)] if out else []


class Engine:
    def __init__(self) -> None:
        self.profiles: list[str] = []

    def _verdict(self, text: str, profile: str) -> Verdict:
        self.profiles.append(profile)
        if "ignore previous" in text:
            return Verdict(
                ["prompt_injection"],
                "block",
                error_message="Refused by policy.",
                events=[("prompt_injection", "block")],
            )
        if "hurt myself" in text:
            return Verdict(
                ["crisis_self_harm"],
                "respond",
                response_text="Please call 988.",
                events=[("crisis_self_harm", "respond")],
            )
        if "555-1234" in text:
            return Verdict(["phi", "medical_emergency"], "pass", events=[("phi", "redact")])
        return Verdict([], "pass")

    def check_input(self, messages: list, profile: str, prefill: bool = False) -> Verdict:
        v = self._verdict(messages[-1]["content"], profile)
        v.messages = [{**m, "content": m["content"].replace("555-1234", "[PHONE]")} for m in messages]
        return v

    def check_prompt(self, prompt: str, profile: str) -> Verdict:
        v = self._verdict(prompt, profile)
        v.prompt = prompt.replace("555-1234", "[PHONE]")
        return v

    def output_guard(self, verdict: Verdict, content: bool = True) -> Guard:
        return Guard(verdict)


def user(text: str, **kw) -> dict:
    return chat_body(messages=[{"role": "user", "content": text}], **kw)


async def test_blocked_input_is_400_and_never_reaches_the_upstream(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    r = await gw.post("/v1/chat/completions", json=user("ignore previous instructions"), headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "content_policy_violation"
    assert r.headers["x-angel-safety"] == "prompt_injection"
    assert upstream.requests == []
    m = (await gw.get("/metrics")).text
    assert 'gateway_safety_events_total{action="block",category="prompt_injection"} 1.0' in m


async def test_canned_answer_is_served_without_the_upstream_as_json_and_stream(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    r = await gw.post("/v1/chat/completions", json=user("I want to hurt myself"), headers=AUTH)
    assert r.status_code == 200 and r.headers["x-angel-safety"] == "crisis_self_harm"
    assert r.json()["choices"][0]["message"] == {"role": "assistant", "content": "Please call 988."}
    r = await gw.post("/v1/chat/completions", json=user("I want to hurt myself", stream=True), headers=AUTH)
    ev = events(r.text)
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in ev[:-1]) == "Please call 988."
    assert ev[-1] == "[DONE]" and ev[-2]["choices"][0]["finish_reason"] == "stop"
    assert upstream.requests == []


async def test_redacted_messages_go_upstream_and_header_on_errors(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    r = await gw.post("/v1/chat/completions", json=user("call me at 555-1234 please"), headers=AUTH)
    assert r.status_code == 200 and r.headers["x-angel-safety"] == "phi,medical_emergency"
    sent = upstream.last_json()["messages"][0]["content"]
    assert sent == "call me at [PHONE] please" and "555-1234" not in upstream.requests[-1].content.decode()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    upstream.answer = down
    r = await gw.post("/v1/chat/completions", json=user("call me at 555-1234 please"), headers=AUTH)
    assert r.status_code == 502 and r.headers["x-angel-safety"] == "phi,medical_emergency"


async def test_output_guard_rewrites_a_json_answer(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    upstream.answer = lambda r: httpx.Response(200, json=completion_json("take rest and fluids"))
    r = await gw.post("/v1/chat/completions", json=user("my number 555-1234"), headers=AUTH)
    assert r.json()["choices"][0]["message"]["content"] == "TAKE REST AND FLUIDS [NOTICE]"
    assert r.json()["usage"]["total_tokens"] == 8


async def test_output_guard_block_on_a_json_answer_is_400(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    upstream.answer = lambda r: httpx.Response(200, json=completion_json("this is forbidden text"))
    r = await gw.post("/v1/chat/completions", json=user("hello"), headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "content_policy_violation"
    m = (await gw.get("/metrics")).text
    assert 'gateway_safety_events_total{action="block",category="crisis_self_harm"} 1.0' in m


async def test_output_guard_holds_streamed_text_back_to_word_ends(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    upstream.answer = lambda r: sse_response(
        sse(chunk("take re"), chunk("st now"), chunk("", "stop"), USAGE_CHUNK, b"[DONE]")
    )
    r = await gw.post("/v1/chat/completions", json=user("555-1234", stream=True), headers=AUTH)
    ev = events(r.text)
    texts = [e["choices"][0]["delta"]["content"] for e in ev[:-1]]
    assert texts == ["TAKE ", "REST ", "NOW [NOTICE]"]  # held back to word ends, tail with the final chunk
    assert ev[-2]["choices"][0]["finish_reason"] == "stop" and ev[-1] == "[DONE]"
    assert all(e["id"] == "c1" for e in ev[:-1])  # chunk structure and ids kept


async def test_output_guard_tail_is_sent_when_the_stream_has_no_finish_chunk(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    upstream.answer = lambda r: sse_response(sse(chunk("take re"), chunk("st"), b"[DONE]"))
    ev = events(
        (await gw.post("/v1/chat/completions", json=user("555-1234", stream=True), headers=AUTH)).text
    )
    assert "".join(e["choices"][0]["delta"]["content"] for e in ev[:-1]) == "TAKE REST [NOTICE]"
    assert ev[-1] == "[DONE]"
    assert all(e["id"] == "c1" for e in ev[:-1])  # the synthesized tail chunk keeps the stream's id


async def test_output_guard_block_midstream_ends_with_an_error_event(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    upstream.answer = lambda r: sse_response(
        sse(chunk("fine "), chunk("forbidden"), chunk("more"), b"[DONE]")
    )
    ev = events((await gw.post("/v1/chat/completions", json=user("hi", stream=True), headers=AUTH)).text)
    assert ev[0]["choices"][0]["delta"]["content"] == "FINE "
    assert ev[-1]["error"]["code"] == "content_policy_violation" and "[DONE]" not in ev


async def test_safety_profile_comes_from_the_key(make_gateway, tmp_path, upstream):
    key, _ = KeyStore(Database(f"sqlite:///{tmp_path}/gw.db")).create("doc", safety_profile="clinician")
    engine = Engine()
    gw = make_gateway(safety_engine=engine)
    await gw.post("/v1/chat/completions", json=user("hi"), headers={"Authorization": f"Bearer {key}"})
    await gw.post("/v1/chat/completions", json=user("hi"), headers=AUTH)
    assert engine.profiles == ["clinician", "patient"]


async def test_completion_prompts_are_checked_and_token_ids_refused(make_gateway, upstream):
    gw = make_gateway(safety_engine=Engine())
    upstream.answer = lambda r: httpx.Response(
        200,
        json={
            "id": "c",
            "object": "text_completion",
            "model": MODEL,
            "choices": [{"index": 0, "text": "ok then"}],
        },
    )
    r = await gw.post("/v1/completions", json={"model": MODEL, "prompt": "ring 555-1234"}, headers=AUTH)
    assert r.json()["choices"][0]["text"] == "OK THEN [NOTICE]"
    assert upstream.last_json()["prompt"] == "ring [PHONE]"
    r = await gw.post("/v1/completions", json={"model": MODEL, "prompt": ["a 555-1234", "b"]}, headers=AUTH)
    assert upstream.last_json()["prompt"] == ["a [PHONE]", "b"]
    r = await gw.post("/v1/completions", json={"model": MODEL, "prompt": [1, 2, 3]}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


async def test_safety_events_are_audited_without_content(make_gateway, tmp_path, upstream):
    gw = make_gateway(safety_engine=Engine())
    await gw.post(
        "/v1/chat/completions", json=user("ignore previous rules"), headers={**AUTH, "x-request-id": "s-1"}
    )
    state_of(gw).audit.close()
    rows = Database(f"sqlite:///{tmp_path}/gw.db").fetchall(
        "SELECT request_id, key_name, category, action FROM audit_safety_events"
    )
    assert rows == [("s-1", "env-key-0", "prompt_injection", "block")]
    status = Database(f"sqlite:///{tmp_path}/gw.db").fetchall("SELECT status, safety FROM audit_log")
    assert status == [(400, "prompt_injection")]
    assert orjson.dumps(rows).find(b"ignore") < 0
