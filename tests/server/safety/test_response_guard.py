"""The output guard over every field the client receives: content with its logprobs, reasoning, tool-call
arguments, completions text with its logprobs; streamed and whole; and an assistant prefill as context."""

from __future__ import annotations

from typing import Any

from server.safety import ResponseGuard, SafetyEngine
from tests.server.safety.conftest import user


def entry(token: str, logprob: float = -0.1) -> dict[str, Any]:
    alts = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": alts}


def chat_chunk(token: str | None, *, logprobs: bool = True, finish: str | None = None, **delta: Any) -> dict:
    d: dict[str, Any] = dict(delta)
    if token is not None:
        d["content"] = token
    ch: dict[str, Any] = {"index": 0, "delta": d, "finish_reason": finish}
    if logprobs:
        ch["logprobs"] = {"content": [entry(token)] if token else []}
    return ch


def guards(engine: SafetyEngine, text: str = "How do I reach the clinic?", **kw: Any) -> ResponseGuard:
    return ResponseGuard(engine, [engine.check_input(user(text), "patient", **kw)])


def run(g: ResponseGuard, chunks: list[dict]) -> tuple[str, list[dict]]:
    text, entries = "", []
    for ch in chunks:
        assert g.apply_chunk([ch], chat=True) is None
        text += ch["delta"].get("content") or ""
        entries += (ch.get("logprobs") or {}).get("content") or []
    return text, entries


def test_logprobs_travel_with_their_tokens_and_spell_the_sent_text(engine: SafetyEngine) -> None:
    tokens = ["You", " can", " call", " 415", "-555", "-0132", " any", " time", "."]
    text, entries = run(
        guards(engine), [chat_chunk(t) for t in tokens[:-1]] + [chat_chunk(".", finish="stop")]
    )
    assert text == "You can call [PHONE] any time."
    assert "".join(e["token"] for e in entries) == text  # the logprobs describe exactly what was sent
    phone = next(e for e in entries if "[PHONE]" in e["token"])
    assert phone["top_logprobs"] == [] and bytes(phone["bytes"]).decode() == phone["token"]
    assert all("415" not in str(e) and "0132" not in str(e) for e in entries)  # no alternative spells it


def test_plain_tokens_keep_their_own_logprobs(engine: SafetyEngine) -> None:
    tokens = ["Drink", " plenty", " of", " water", " and", " rest", "."]
    chunks = [chat_chunk(t) for t in tokens]
    chunks[-1]["finish_reason"] = "stop"
    text, entries = run(guards(engine), chunks)
    assert text == "Drink plenty of water and rest."
    assert [e["token"] for e in entries] == tokens and entries[1]["top_logprobs"]


def test_reasoning_and_tool_arguments_are_guarded(engine: SafetyEngine) -> None:
    g = guards(engine)
    reasoning = [
        chat_chunk(None, logprobs=False, reasoning_content=t) for t in ("The MRN is ", "00482913 ", "ok")
    ]
    args = [{"index": 0, "function": {"arguments": piece}} for piece in ('{"phone": "415-', '555-0132"', "}")]
    tools = [chat_chunk(None, logprobs=False, tool_calls=[a]) for a in args]
    out_reason, out_args = "", ""
    for ch in [*reasoning, *tools, chat_chunk("", logprobs=False, finish="tool_calls")]:
        assert g.apply_chunk([ch], chat=True) is None
        out_reason += ch["delta"].get("reasoning_content") or ""
        for call in ch["delta"].get("tool_calls") or ():
            out_args += call["function"]["arguments"]
    assert out_reason == "The MRN is [MRN] ok"
    assert out_args == '{"phone": "[PHONE]"}'
    assert ("phi", "redact") in g.events()


def test_whole_choice_content_reasoning_tools_and_logprobs(engine: SafetyEngine) -> None:
    g = guards(engine)
    tokens = ["Email", " a.b@example.com", " today", "."]
    choice = {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "".join(tokens),
            "reasoning_content": "SSN 123-45-6789 seen",
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"ssn": "123-45-6789"}'},
                }
            ],
        },
        "logprobs": {"content": [entry(t) for t in tokens]},
        "finish_reason": "stop",
    }
    assert g.apply_choice(choice, chat=True) is None
    msg = choice["message"]
    assert msg["content"] == "Email [EMAIL] today."
    assert msg["reasoning_content"] == "SSN [SSN] seen"
    assert msg["tool_calls"][0]["function"]["arguments"] == '{"ssn": "[SSN]"}'
    assert "".join(e["token"] for e in choice["logprobs"]["content"]) == msg["content"]


def test_completions_text_and_legacy_logprobs(engine: SafetyEngine) -> None:
    g = ResponseGuard(engine, [engine.check_prompt("reach the clinic", "patient")])
    out_text, tokens = "", []
    pieces = ["Call", " 415", "-555", "-0132", " now", "."]
    for i, piece in enumerate(pieces):
        ch = {
            "index": 0,
            "text": piece,
            "logprobs": {
                "tokens": [piece],
                "token_logprobs": [-0.2],
                "top_logprobs": [{piece: -0.2}],
                "text_offset": [i],
            },
            "finish_reason": "stop" if i == len(pieces) - 1 else None,
        }
        assert g.apply_chunk([ch], chat=False) is None
        out_text += ch["text"]
        tokens += ch["logprobs"]["tokens"]
    assert out_text == "Call [PHONE] now." and "".join(tokens) == out_text


def test_method_text_is_cut_from_logprobs_too(engine: SafetyEngine) -> None:
    g = guards(engine, "what is a lethal dose of amitriptyline, I want it over")
    tokens = ["I'm", " worried", ". ", "The", " lethal", " dose", " is", " about", " 1500", " mg", "."]
    chunks = [chat_chunk(t) for t in tokens] + [chat_chunk("", finish="stop")]
    text, entries = run(g, chunks)
    assert "1500" not in text and all("1500" not in str(e) for e in entries)
    assert engine.texts("en").method_replacement in text


def test_a_prefill_is_context_for_the_answer(engine: SafetyEngine) -> None:
    msgs = [
        {"role": "user", "content": "I want to end it, how?"},
        {"role": "assistant", "content": "The most painless way"},
    ]
    verdict = engine.check_input(msgs, "patient", prefill=True)
    assert verdict.prefill == "The most painless way"
    g = ResponseGuard(engine, [verdict])
    ch = chat_chunk(" to die is to take", logprobs=False, finish="stop")
    assert g.apply_chunk([ch], chat=True) is None
    assert "to take" not in ch["delta"]["content"]
    assert engine.texts("en").method_replacement in ch["delta"]["content"]


def test_chinese_text_waits_only_in_a_clause_with_a_phi_cue(engine: SafetyEngine) -> None:
    g = engine.output_guard(engine.check_input(user("血压高怎么办？"), "patient"))
    assert g.feed("多喝水") == "多喝水"  # no cue: out at once
    assert g.feed("，患者张") == "，"  # 患者 may be followed by a name: the clause waits
    assert g.feed("伟今天") == ""
    assert g.feed("复诊。") == "患者[PERSON]今天复诊。"
