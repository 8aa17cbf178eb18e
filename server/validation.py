"""Request checks that name the offending parameter (400 `invalid_request_error`, `param` set).

Only what the gateway relies on, or what would otherwise reach the engine as a confusing error, is
checked; every other field passes through to vLLM untouched (its sampling extensions included).
"""

from __future__ import annotations

from typing import Any

from server.errors import bad_param

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_MESSAGES = 4096


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _common(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
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


def validate_chat(body: dict[str, Any]) -> None:
    _common(body)
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise bad_param("messages", "'messages' must be a non-empty array.")
    if len(msgs) > MAX_MESSAGES:
        raise bad_param("messages", f"'messages' may hold at most {MAX_MESSAGES} items.")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise bad_param(f"messages[{i}]", f"messages[{i}] must be an object.")
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad_param(f"messages[{i}].role", f"messages[{i}].role must be one of {sorted(ROLES)}.")
        c = m.get("content")
        if c is not None and not isinstance(c, (str, list)):
            raise bad_param(f"messages[{i}].content", f"messages[{i}].content must be a string or an array.")


def validate_completion(body: dict[str, Any]) -> None:
    _common(body)
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
