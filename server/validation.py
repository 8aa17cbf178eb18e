"""Request checks that name the offending parameter (400 `invalid_request_error`, `param` set), the
parsing of a request body, and what the gateway measures in a prompt before the engine sees it.

Only what the gateway relies on, or what would otherwise reach the engine as a confusing error, is
checked; every other field passes through to vLLM untouched (its sampling extensions included). With the
safety layer off, the gateway accepts what vLLM accepts: any message role (the chat template decides) and
an absent `model` (vLLM's default model). With it on, roles must be known ones (the rails read each message
by its role; see server/README.md) and `model` is required.

Everything here is plain computation over the body: server/offload.py runs it in a worker process for
large bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from server.errors import GatewayError, bad_param

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_MESSAGES = 4096
_MAX_DUMP_DEPTH = 254  # orjson.dumps' nesting limit
# The most characters one token can stand for, in any tokenizer the engine may serve: a prompt of C
# characters is then at least C / MAX_CHARS_PER_TOKEN tokens, and one longer than the model reads by that
# count is refused without asking the engine. The longest tokens of byte-level BPE vocabularies are runs
# of spaces or punctuation (Mistral's 150k Tekken vocabulary, shipped in mistral_common: 78 bytes, a run of
# '*'; a byte-level token is never fewer bytes than the characters it decodes to), and SentencePiece caps
# pieces at 16 characters by default. vLLM applies the same bound with the served tokenizer's own longest
# token (renderers/params.py, `max_chars_per_token`); the gateway does not have the tokenizer, so 128.
MAX_CHARS_PER_TOKEN = 128
# Characters per token for the rate limiter's estimate of a prompt (OpenAI estimates the same way); the
# real count replaces it when the request ends.
CHARS_PER_TOKEN_ESTIMATE = 4
TEXT_FIELD = {"chat": "messages", "completion": "prompt"}


@dataclass(slots=True)
class Inspected:
    """A parsed, validated body and what the gateway measured in its prompt."""

    body: dict[str, Any]  # the whole body, or (inspected off the loop) all but its text field
    min_tokens: list[int]  # per prompt: tokens it has at least (a chat is one prompt)
    est_tokens: int  # prompt tokens expected, all prompts together (for the TPM reservation)


def parse_json(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or a 400 `invalid_request_error`."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GatewayError(400, "invalid_request_error", "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "invalid_request_error", "Request body must be a JSON object.")
    # orjson reads up to 1024 levels but writes at most 254, and the body is re-serialised for the
    # upstream: refuse what cannot be forwarded. Only bodies with that many brackets can be that deep,
    # so the trial serialisation is skipped for ordinary requests.
    if raw.count(b"[") + raw.count(b"{") > _MAX_DUMP_DEPTH:
        try:
            orjson.dumps(body)
        except TypeError:
            raise GatewayError(400, "invalid_request_error", "Request body is nested too deeply.") from None
    return body


def inspect(raw: bytes, kind: str, strict: bool, keep_text: bool = True) -> Inspected:
    """Parse and validate a chat (`kind` "chat") or completion body and measure its prompt. `strict`:
    the safety layer's rules (known roles, `model` required). Without `keep_text` the text field is left
    out of the returned body (it stays in `raw`, for the worker that scans it)."""
    body = parse_json(raw)
    if kind == "chat":
        validate_chat(body, strict)
        chars = sum(_message_chars(m) for m in body["messages"])
        min_tokens, est = [-(-chars // MAX_CHARS_PER_TOKEN)], -(-chars // CHARS_PER_TOKEN_ESTIMATE)
    else:
        validate_completion(body, strict)
        min_tokens, est = _prompt_tokens(body["prompt"])
    if not keep_text:
        body = {k: v for k, v in body.items() if k != TEXT_FIELD[kind]}
    return Inspected(body, min_tokens, est)


def _message_chars(m: dict[str, Any]) -> int:
    c = m.get("content")
    if isinstance(c, str):
        return len(c)
    if isinstance(c, list):
        return sum(len(p["text"]) for p in c if isinstance(p, dict) and isinstance(p.get("text"), str))
    return 0


def _prompt_tokens(prompt: Any) -> tuple[list[int], int]:
    """(tokens each prompt has at least, tokens expected in all): token ids count exactly."""
    if isinstance(prompt, str):
        return [-(-len(prompt) // MAX_CHARS_PER_TOKEN)], -(-len(prompt) // CHARS_PER_TOKEN_ESTIMATE)
    if all(isinstance(x, int) for x in prompt):  # one prompt of token ids
        return [len(prompt)], len(prompt)
    if all(isinstance(x, list) for x in prompt):  # several prompts of token ids
        return [len(x) for x in prompt], sum(len(x) for x in prompt)
    return (
        [-(-len(p) // MAX_CHARS_PER_TOKEN) for p in prompt],
        sum(-(-len(p) // CHARS_PER_TOKEN_ESTIMATE) for p in prompt),
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _common(body: dict[str, Any], strict: bool = True) -> None:
    model = body.get("model")
    # vLLM serves its default model for an absent or empty `model` (and refuses any other type).
    if strict or model is not None:
        if not isinstance(model, str) or (strict and not model.strip()):
            raise bad_param("model", "'model' is required and must be a non-empty string.")
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise bad_param("stream", "'stream' must be a boolean.")
    so = body.get("stream_options")
    if so is not None:
        if not isinstance(so, dict):
            raise bad_param("stream_options", "'stream_options' must be an object.")
        if "include_usage" in so and not isinstance(so["include_usage"], (bool, type(None))):
            raise bad_param("stream_options.include_usage", "'include_usage' must be a boolean.")
    for name in ("max_tokens", "max_completion_tokens"):
        v = body.get(name)
        if v is not None and (not _is_int(v) or v < 1):
            raise bad_param(name, f"'{name}' must be a positive integer.")
    n = body.get("n")
    if n is not None and (not _is_int(n) or not 1 <= n <= 128):
        raise bad_param("n", "'n' must be an integer between 1 and 128.")
    t = body.get("temperature")
    if t is not None and (not _is_num(t) or not 0 <= t <= 2):
        raise bad_param("temperature", "'temperature' must be a number between 0 and 2.")
    p = body.get("top_p")
    if p is not None and (not _is_num(p) or not 0 < p <= 1):
        raise bad_param("top_p", "'top_p' must be a number in (0, 1].")


def validate_chat(body: dict[str, Any], strict: bool = True) -> None:
    _common(body, strict)
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise bad_param("messages", "'messages' must be a non-empty array.")
    if len(msgs) > MAX_MESSAGES:
        raise bad_param("messages", f"'messages' may hold at most {MAX_MESSAGES} items.")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise bad_param(f"messages[{i}]", f"messages[{i}] must be an object.")
        role = m.get("role")
        if not isinstance(role, str) or (strict and role not in ROLES):
            raise bad_param(f"messages[{i}].role", f"messages[{i}].role must be one of {sorted(ROLES)}.")
        c = m.get("content")
        if c is not None and not isinstance(c, (str, list)):
            raise bad_param(f"messages[{i}].content", f"messages[{i}].content must be a string or an array.")


def validate_completion(body: dict[str, Any], strict: bool = True) -> None:
    _common(body, strict)
    p = body.get("prompt")
    ok = isinstance(p, str) or (
        isinstance(p, list)
        and p
        and (
            all(isinstance(x, str) for x in p)
            or all(_is_int(x) for x in p)
            or all(isinstance(x, list) and x and all(_is_int(t) for t in x) for x in p)
        )
    )
    if not ok:
        raise bad_param("prompt", "'prompt' must be a string, an array of strings, or token ids.")


def apply_max_tokens_cap(body: dict[str, Any], cap: int | None) -> None:
    """A key's max_tokens cap: larger requests are refused, absent ones get the cap."""
    if not cap:
        return
    for name in ("max_tokens", "max_completion_tokens"):
        v = body.get(name)
        if v is not None and v > cap:
            raise bad_param(name, f"'{name}' exceeds this key's limit of {cap}.")
    if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        body["max_tokens"] = cap
