"""What the model will read: every text of a request, found where the chat template will find it.

A request becomes a list of `Turn`s (one per message, or per completion prompt), each a list of `Slot`s: a
string and its path in the request body. The rails read a turn's slots together, as vLLM joins a message's
text parts (with a newline) before the template renders it, so a trigger or an identifier split across
parts is still one text to them. Rewrites (redactions, neutralised control strings) go back to the same
paths in a copy of the body; the caller's objects are never changed.

What counts as text the model reads (vLLM 0.32's chat parser and the AntAngelMed template):
- message `content`: a string, or parts of type text / input_text / output_text (`text`), refusal
  (`refusal`), thinking (`thinking`), or a bare string part;
- an assistant's `tool_calls` (function name and JSON arguments), legacy `function_call`, and `reasoning` /
  `reasoning_content`; any message's `name`;
- Responses: `instructions`, and `input` as a string or a list of message items (with the same part types),
  function_call items (name, arguments) and function_call_output items (output).
Parts the rails cannot read (images, audio, video, files, embeddings) and part types nobody knows are refused
with UncheckableInput, never forwarded unread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]

# Roles the template knows; with safety on an unknown role is refused (the template would print it as a
# turn header the rails never judged).
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TEXT_PARTS = {
    "text": "text",
    "input_text": "text",
    "output_text": "text",
    "refusal": "refusal",
    "thinking": "thinking",
}
_MEDIA_PARTS = frozenset(
    {"image_url", "input_image", "image_pil", "image_embeds", "audio_url", "input_audio", "audio_embeds",
     "video_url", "video_embeds", "prompt_embeds", "file", "input_file", "tool_reference"}
)  # fmt: skip
_MEDIA_KEYS = frozenset({"image_url", "image_pil", "image_embeds", "audio_url", "input_audio", "video_url"})


class UncheckableInput(ValueError):
    """Input the rails cannot read: refused rather than forwarded unread. `param` names where it is."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class Slot:
    """One string the model will read, and where it sits in the request body."""

    path: Path
    text: str


@dataclass
class Turn:
    """The texts one message (or one prompt) gives the model, read together by the rails."""

    role: str
    slots: list[Slot] = field(default_factory=list)
    # template control strings in chat and Responses text are neutralised; a raw completion prompt is the
    # caller's own template, so its control strings are theirs to write
    templated: bool = True


def param_of(path: Path) -> str:
    """`messages[2].content[1].text` for ("messages", 2, "content", 1, "text")."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


# ---- chat completions ----------------------------------------------------------------------------------
def chat_turns(messages: list[Any], strict_roles: bool = True) -> list[Turn]:
    """One turn per message. `strict_roles`: refuse a role the template does not know."""
    turns = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            continue
        role = msg.get("role", "user")
        if strict_roles and role not in ROLES:
            raise UncheckableInput(
                f"Unknown role {str(role)[:40]!r}: with the safety layer on, roles are "
                f"{', '.join(sorted(ROLES))}.",
                f"messages[{i}].role",
            )
        turn = Turn(str(role))
        turn.slots.extend(_message_slots(msg, ("messages", i)))
        turns.append(turn)
    return turns


def _message_slots(msg: dict[str, Any], at: Path) -> Iterator[Slot]:
    yield from _content_slots(msg.get("content"), (*at, "content"))
    if isinstance(msg.get("name"), str):
        yield Slot((*at, "name"), msg["name"])
    for key in ("reasoning", "reasoning_content"):
        if isinstance(msg.get(key), str):
            yield Slot((*at, key), msg[key])
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        for j, call in enumerate(calls):
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                yield from _function_slots(fn, (*at, "tool_calls", j, "function"))
    if isinstance(msg.get("function_call"), dict):
        yield from _function_slots(msg["function_call"], (*at, "function_call"))


def _function_slots(fn: dict[str, Any], at: Path) -> Iterator[Slot]:
    for key in ("name", "arguments"):
        if isinstance(fn.get(key), str):
            yield Slot((*at, key), fn[key])


def _content_slots(content: Any, at: Path) -> Iterator[Slot]:
    if isinstance(content, str):
        yield Slot(at, content)
        return
    if not isinstance(content, list):
        return
    for j, part in enumerate(content):
        where = (*at, j)
        if isinstance(part, str):
            yield Slot(where, part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            key = _TEXT_PARTS[kind]
            if isinstance(part.get(key), str):
                yield Slot((*where, key), part[key])
            continue
        if kind in _MEDIA_PARTS or (kind is None and _MEDIA_KEYS & part.keys()):
            raise UncheckableInput(
                f"Content parts of type {kind or 'media'!r} are not accepted while the safety layer is on: "
                "the rails read text only.",
                param_of(where),
            )
        raise UncheckableInput(
            f"Unknown content part type {str(kind)[:40]!r}; text parts are {', '.join(sorted(_TEXT_PARTS))}.",
            param_of((*where, "type")),
        )


# ---- tool definitions ----------------------------------------------------------------------------------
def tool_turns(tools: Any, at: Path = ("tools",)) -> list[Turn]:
    """The tool definitions a request offers: the template writes their names and descriptions (and those of
    their parameters) into the system turn, so an instruction hidden there reaches the model. One turn per
    tool, read as the developer's words (injection and PHI, not crisis)."""
    if not isinstance(tools, list):
        return []
    turns = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool  # chat / Responses form
        where = (*at, i, "function") if fn is not tool else (*at, i)
        turns.append(Turn("developer", list(_schema_texts(fn, where))))
    return turns


def _schema_texts(node: Any, at: Path) -> Iterator[Slot]:
    """`name` and `description` strings anywhere in a tool definition (its JSON schema included)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("name", "description", "title") and isinstance(value, str):
                yield Slot((*at, key), value)
            elif isinstance(value, (dict, list)):
                yield from _schema_texts(value, (*at, key))
    elif isinstance(node, list):
        for j, value in enumerate(node):
            yield from _schema_texts(value, (*at, j))


# ---- completions ---------------------------------------------------------------------------------------
def prompt_turns(prompt: Any) -> list[Turn]:
    """One turn per prompt string; token-id prompts are refused (they would slip past every rail)."""
    prompts = [prompt] if isinstance(prompt, str) else prompt if isinstance(prompt, list) else []
    if not all(isinstance(p, str) for p in prompts):
        raise UncheckableInput("Token-id prompts are not accepted while the safety layer is on.", "prompt")
    at: list[Path] = (
        [("prompt",)] if isinstance(prompt, str) else [("prompt", i) for i in range(len(prompts))]
    )
    return [Turn("user", [Slot(path, p)], templated=False) for path, p in zip(at, prompts, strict=True)]


# ---- Responses -----------------------------------------------------------------------------------------
def responses_turns(body: dict[str, Any]) -> list[Turn]:
    turns = tool_turns(body.get("tools"))
    if isinstance(body.get("instructions"), str):
        turns.append(Turn("system", [Slot(("instructions",), body["instructions"])]))
    items = body.get("input")
    if isinstance(items, str):
        turns.append(Turn("user", [Slot(("input",), items)]))
        return turns
    if not isinstance(items, list):
        return turns
    for i, item in enumerate(items):
        at = ("input", i)
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" or (kind is None and "role" in item):
            role = item.get("role", "user")
            if role not in ROLES:
                raise UncheckableInput(f"Unknown role {str(role)[:40]!r}.", param_of((*at, "role")))
            turns.append(Turn(str(role), list(_content_slots(item.get("content"), (*at, "content")))))
        elif kind == "function_call":
            turns.append(Turn("assistant", list(_function_slots(item, at))))
        elif kind == "function_call_output":
            out = item.get("output")
            turns.append(Turn("tool", [Slot((*at, "output"), out)] if isinstance(out, str) else []))
        elif kind == "reasoning":
            summary = item.get("summary") if isinstance(item.get("summary"), list) else []
            slots = [
                Slot((*at, "summary", j, "text"), s["text"])
                for j, s in enumerate(summary)
                if isinstance(s, dict) and isinstance(s.get("text"), str)
            ]
            turns.append(Turn("assistant", slots))
        else:
            raise UncheckableInput(
                f"Input items of type {str(kind)[:40]!r} are not accepted while the safety layer is on.",
                param_of((*at, "type")),
            )
    return turns


# ---- writing back --------------------------------------------------------------------------------------
def write_back(body: dict[str, Any], rewrites: dict[Path, str]) -> dict[str, Any]:
    """A shallow copy of `body` with each path's string replaced; every container on a changed path is
    copied, so the caller's objects stay as they were."""
    out = dict(body)
    copied: set[Path] = {()}
    for path, text in rewrites.items():
        node: Any = out
        for depth, key in enumerate(path[:-1]):
            here = path[: depth + 1]
            child = node[key]
            if here not in copied:
                child = node[key] = list(child) if isinstance(child, list) else dict(child)
                copied.add(here)
            node = child
        node[path[-1]] = text
    return out
