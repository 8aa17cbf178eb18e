"""The generated chat template's tool form, and vLLM's `hermes` tool parser reading it.

AntAngelMed's template (the Ling 2.0 family's) lists the tools in the leading SYSTEM turn and writes each
call as `<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>`; tool results share one OBSERVATION
turn. vLLM's `hermes` parser reads exactly that JSON form, so the serving recipes pass
`--enable-auto-tool-choice --tool-call-parser hermes`. A random-weight model never chooses to call a tool, so
the parser is fed the template's own rendering of an assistant turn (a template-exact completion), whole and
token by token as vLLM streams it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_plugin.checkpoints.tokenizer import EOS_TOKEN

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "find_interactions",
            "description": "Look up interactions between two drugs.",
            "parameters": {
                "type": "object",
                "properties": {"drug": {"type": "string"}, "with": {"type": "string"}},
                "required": ["drug"],
            },
        },
    }
]
_FN = "find_interactions"
CALLS = [
    {"id": "c1", "type": "function", "function": {"name": _FN, "arguments": '{"drug": "warfarin"}'}},
    # arguments as an object (what some clients send): rendered as JSON all the same
    {"id": "c2", "type": "function", "function": {"name": _FN, "arguments": {"drug": "阿司匹林"}}},
]
TOOLS_BLOCK = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "find_interactions", "description": "Look up interactions '
    'between two drugs.", "parameters": {"type": "object", "properties": {"drug": {"type": "string"}, '
    '"with": {"type": "string"}}, "required": ["drug"]}}}\n</tools>\n\n'
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n'
)


@pytest.fixture(scope="module")
def hf_tok(tiny_checkpoint: Path) -> Any:
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(tiny_checkpoint))


def render(tok: Any, messages: list[dict[str, Any]], **kw: Any) -> str:
    return tok.apply_chat_template(messages, tokenize=False, **kw)


def test_tools_calls_and_results_render_in_the_ling_form(hf_tok: Any) -> None:
    messages = [
        {"role": "system", "content": "You are a careful pharmacist."},
        {"role": "user", "content": "Warfarin with aspirin?"},
        {"role": "assistant", "content": "", "tool_calls": CALLS},
        {"role": "tool", "tool_call_id": "c1", "content": "Major: bleeding risk."},
        {"role": "tool", "tool_call_id": "c2", "content": "Same as aspirin."},
        {"role": "assistant", "content": "Avoid the combination."},
        {"role": "user", "content": "And ibuprofen?"},
    ]
    text = render(hf_tok, messages, tools=TOOLS, add_generation_prompt=True)
    assert text == (
        "<role>SYSTEM</role>You are a careful pharmacist.\n" + TOOLS_BLOCK + "<|role_end|>"
        "<role>HUMAN</role>Warfarin with aspirin?<|role_end|>"
        "<role>ASSISTANT</role>"
        '<tool_call>\n{"name": "find_interactions", "arguments": {"drug": "warfarin"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "find_interactions", "arguments": {"drug": "阿司匹林"}}\n</tool_call>'
        "<|role_end|>"
        "<role>OBSERVATION</role>\n<tool_response>\nMajor: bleeding risk.\n</tool_response>"
        "\n<tool_response>\nSame as aspirin.\n</tool_response><|role_end|>"
        "<role>ASSISTANT</role>Avoid the combination.<|role_end|>"
        "<role>HUMAN</role>And ibuprofen?<|role_end|>"
        "<role>ASSISTANT</role>"
    )


def test_tools_without_a_system_message_open_their_own_system_turn(hf_tok: Any) -> None:
    text = render(hf_tok, [{"role": "user", "content": "hi"}], tools=TOOLS, add_generation_prompt=True)
    assert (
        text
        == "<role>SYSTEM</role>"
        + TOOLS_BLOCK
        + "<|role_end|><role>HUMAN</role>hi<|role_end|><role>ASSISTANT</role>"
    )


def test_text_before_a_call_is_kept_and_separated_by_a_newline(hf_tok: Any) -> None:
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "Checking.", "tool_calls": CALLS[:1]},
    ]
    text = render(hf_tok, messages)
    assert text.endswith(
        '<role>ASSISTANT</role>Checking.\n<tool_call>\n{"name": "find_interactions", '
        '"arguments": {"drug": "warfarin"}}\n</tool_call><|role_end|>'
    )


def test_conversations_without_tools_render_as_before(hf_tok: Any) -> None:
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A", "tool_calls": None},
        {"role": "tool", "content": "T"},
    ]
    assert render(hf_tok, messages, tools=None) == (
        "<role>SYSTEM</role>S<|role_end|><role>HUMAN</role>U<|role_end|><role>ASSISTANT</role>A<|role_end|>"
        "<role>OBSERVATION</role>\n<tool_response>\nT\n</tool_response><|role_end|>"
    )


# ---- vLLM's hermes parser on the template's own completions ------------------------------------------------


def completion_of(tok: Any, content: str, calls: list[dict[str, Any]]) -> str:
    """What the model would generate for this assistant turn: the template's rendering of it, after the
    `<role>ASSISTANT</role>` prompt, up to the turn end (where generation stops)."""
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": content, "tool_calls": calls},
    ]
    text = render(tok, messages, tools=TOOLS)
    return text[text.rindex("<role>ASSISTANT</role>") + len("<role>ASSISTANT</role>") : -len(EOS_TOKEN)]


@pytest.fixture(scope="module")
def parser_cls(tiny_checkpoint: Path) -> Any:
    hermes = pytest.importorskip("vllm.tool_parsers.hermes_tool_parser")
    from vllm.tokenizers import get_tokenizer

    tokenizer = get_tokenizer(str(tiny_checkpoint))
    return lambda: hermes.Hermes2ProToolParser(tokenizer)


def expected_calls() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for call in CALLS:
        fn = call["function"]
        args = fn["arguments"]
        out.append((fn["name"], json.loads(args) if isinstance(args, str) else args))
    return out


@pytest.mark.parametrize("content", ["", "Let me check both."])
def test_hermes_parser_reads_the_template_exact_completion(
    hf_tok: Any, parser_cls: Any, content: str
) -> None:
    text = completion_of(hf_tok, content, CALLS)
    info = parser_cls().extract_tool_calls(text, None)
    assert info.tools_called
    got = [(c.function.name, json.loads(c.function.arguments)) for c in info.tool_calls]
    assert got == expected_calls()
    assert (info.content or "").strip() == content


def test_hermes_parser_streams_the_template_exact_completion_token_by_token(
    hf_tok: Any, parser_cls: Any
) -> None:
    text = completion_of(hf_tok, "Let me check both.", CALLS)
    ids = hf_tok(text, add_special_tokens=False)["input_ids"]
    assert hf_tok.decode(ids) == text and len(ids) > 20  # many small deltas, as the engine streams them
    parser = parser_cls()
    prev_text, prev_ids, content = "", [], ""
    names: dict[int, str] = {}
    args: dict[int, str] = {}
    for i in range(1, len(ids) + 1):
        cur_text = hf_tok.decode(ids[:i])
        if cur_text.endswith("\ufffd"):
            continue  # half a UTF-8 character: vLLM's detokenizer waits for the rest, so does this loop
        delta = parser.extract_tool_calls_streaming(
            prev_text, cur_text, cur_text[len(prev_text) :], prev_ids, ids[:i], ids[len(prev_ids) : i], None
        )
        prev_text, prev_ids = cur_text, ids[:i]
        if delta is None:
            continue
        content += delta.content or ""
        for tc in delta.tool_calls:
            fn = tc.function if isinstance(tc.function, dict) else tc.function.model_dump(exclude_none=True)
            if fn.get("name"):
                names[tc.index] = fn["name"]
            args[tc.index] = args.get(tc.index, "") + (fn.get("arguments") or "")
    assert content.strip() == "Let me check both."
    assert [(names[i], json.loads(args[i])) for i in sorted(names)] == expected_calls()
