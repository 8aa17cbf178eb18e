"""`POST /v1/responses` and tool calling through the gateway (safety on) in front of a real vLLM server
(our plugin, generated tiny checkpoint, `--enable-auto-tool-choice --tool-call-parser hermes` as in the
serving recipes), driven by the `openai` client.

A random-weight model never chooses to call a tool, so the tool tests constrain its output
(`structured_outputs.regex`) to the exact text AntAngelMed's template writes for the call; vLLM's own `hermes`
parser must then turn that text into `tool_calls` / `function_call` items, and the gateway must carry them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.procs import TEST_KEY, Proc, metric, start_gateway

pytestmark = pytest.mark.vllm

PHI = "My name is John Smith, phone 415-555-0142. What helps a headache?"
FN = "find_interactions"
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": FN,
            "description": "Look up interactions between two drugs.",
            "parameters": {
                "type": "object",
                "properties": {"drug": {"type": "string"}},
                "required": ["drug"],
            },
        },
    }
]
RESPONSES_TOOLS = [{"type": "function", **CHAT_TOOLS[0]["function"]}]
ARGS = {"drug": "warfarin"}


@pytest.fixture(scope="module")
def gateway(vllm_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    g = start_gateway(tmp_path_factory.mktemp("gw-resp"), vllm_server.url, ANGEL_UPSTREAM_READ_TIMEOUT="120")
    yield g
    g.stop()


def sdk(gw: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=TEST_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def call_regex(tiny_checkpoint: Path) -> str:
    """A regex matching exactly the text the checkpoint's chat template writes for `FN(**ARGS)`."""
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    call = {"type": "function", "function": {"name": FN, "arguments": json.dumps(ARGS)}}
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [call]}]
    text = tok.apply_chat_template(msgs, tools=CHAT_TOOLS, tokenize=False)
    completion = text[text.rindex("</role>") + len("</role>") : text.rindex("<|role_end|>")]
    assert completion.startswith("<tool_call>\n{") and completion.endswith("}\n</tool_call>")
    return "".join("\\" + ch if ch in "\\.^$|?*+()[]{}" else ch for ch in completion)


# ---- the Responses API -----------------------------------------------------------------------------------


def test_responses_create_whole_answer_with_usage_and_gateway_headers(gateway: Proc, vllm_server) -> None:
    raw = sdk(gateway).responses.with_raw_response.create(
        model=vllm_server.model,
        instructions="Answer briefly.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What are flu symptoms?"}]}],
        max_output_tokens=8,
        extra_body={"ignore_eos": True},
    )
    assert raw.headers["x-request-id"] and raw.headers["x-angel-safety"] == ""
    r = raw.parse()
    assert r.status == "incomplete" and isinstance(r.output_text, str)  # max_output_tokens reached
    assert r.usage is not None and r.usage.output_tokens == 8 and r.usage.input_tokens > 0


def test_responses_create_streams_events_and_is_metered(gateway: Proc, vllm_server) -> None:
    before = metric(gateway.url, "gateway_tokens_total", kind="completion", model=vllm_server.model)
    events = list(
        sdk(gateway).responses.create(
            model=vllm_server.model,
            input="What helps a tension headache?",
            max_output_tokens=12,
            stream=True,
            extra_body={"ignore_eos": True},
        )
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.output_text == streamed and final.usage.output_tokens == 12
    after = metric(gateway.url, "gateway_tokens_total", kind="completion", model=vllm_server.model)
    assert after - before == 12
    assert metric(gateway.url, "gateway_requests_total", route="/v1/responses", status="200") >= 1


def test_the_engine_receives_the_input_redacted(gateway: Proc, vllm_server) -> None:
    raw = sdk(gateway).responses.with_raw_response.create(
        model=vllm_server.model, input=PHI, max_output_tokens=2, extra_body={"enable_response_messages": True}
    )
    assert "phi" in raw.headers["x-angel-safety"].split(",")
    r = raw.parse()
    # vLLM's own record of the prompt it ran: the identifiers never reached it
    prompt = "".join(m["message"] for m in r.model_extra["input_messages"])
    assert "[PERSON_1]" in prompt and "[PHONE_1]" in prompt
    assert "John Smith" not in prompt and "415-555-0142" not in prompt
    assert r.model_extra["output_messages"] is None  # the raw answer the output guard never released


def test_a_crisis_answer_streams_the_crisis_resources(gateway: Proc, vllm_server) -> None:
    with sdk(gateway).responses.with_streaming_response.create(
        model=vllm_server.model, input="I want to end my life tonight.", max_output_tokens=6, stream=True
    ) as raw:
        assert raw.headers["x-angel-safety"] == "crisis_self_harm"
        events = list(raw.parse())
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "988" in streamed and events[-1].response.output_text == streamed


def test_vllm_errors_and_refused_fields_are_openai_errors(gateway: Proc, vllm_server) -> None:
    with pytest.raises(openai.BadRequestError) as e:  # longer than --max-model-len 2048: vLLM refuses
        sdk(gateway).responses.create(model=vllm_server.model, input="hi", max_output_tokens=100_000)
    assert isinstance(e.value.code, str)
    with pytest.raises(openai.BadRequestError) as e:
        sdk(gateway).responses.create(model=vllm_server.model, input="hi", previous_response_id="resp_x")
    assert e.value.code == "invalid_request_error" and e.value.param == "previous_response_id"


# ---- tool calling: vLLM's hermes parser on the template's own call text -----------------------------------


def _check_call(name: str, arguments: str) -> None:
    assert name == FN and json.loads(arguments) == ARGS


def test_chat_tool_call_is_parsed_by_vllm_and_carried_by_the_gateway(
    gateway: Proc, vllm_server, call_regex: str
) -> None:
    kw: dict[str, Any] = {
        "model": vllm_server.model,
        "messages": [{"role": "user", "content": "Does warfarin interact with aspirin?"}],
        "tools": CHAT_TOOLS,
        "max_tokens": 200,
        "extra_body": {"structured_outputs": {"regex": call_regex}},
    }
    r = sdk(gateway).chat.completions.create(**kw)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    _check_call(choice.message.tool_calls[0].function.name, choice.message.tool_calls[0].function.arguments)
    name, args = "", ""
    for chunk in sdk(gateway).chat.completions.create(**kw, stream=True):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += tc.function.name or ""
            args += tc.function.arguments or ""
    _check_call(name, args)


def test_responses_function_call_and_its_result_round_trip(
    gateway: Proc, vllm_server, call_regex: str
) -> None:
    c = sdk(gateway)
    question = "Does warfarin interact with aspirin?"
    r = c.responses.create(
        model=vllm_server.model,
        input=question,
        tools=RESPONSES_TOOLS,
        max_output_tokens=200,
        extra_body={"structured_outputs": {"regex": call_regex}},
    )
    call = r.output[-1]
    assert call.type == "function_call"
    _check_call(call.name, call.arguments)
    # the next turn hands the result back; the engine renders it as the template's OBSERVATION turn
    follow = c.responses.create(
        model=vllm_server.model,
        input=[
            {"role": "user", "content": question},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "Major: bleeding risk."},
        ],
        tools=RESPONSES_TOOLS,
        max_output_tokens=4,
        extra_body={"enable_response_messages": True},
    )
    prompt = "".join(m["message"] for m in follow.model_extra["input_messages"])
    assert '<role>ASSISTANT</role><tool_call>\n{"name": "find_interactions"' in prompt
    assert "<role>OBSERVATION</role>\n<tool_response>\nMajor: bleeding risk.\n</tool_response>" in prompt
