"""Types every part of the safety layer shares: spans, the input verdict, request placeholders, and the
one function that cuts spans out of a text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Span = tuple[int, int, str]  # (start, end, kind): kind is a PHI entity or a category
Events = list[tuple[str, str]]  # (category, action) pairs, for metrics and the audit log


class PlaceholderMap:
    """Typed placeholders ([PHONE_1], [PERSON_2], ...) for one request; the same value gets the same one."""

    def __init__(self) -> None:
        self.by_value: dict[tuple[str, str], str] = {}
        self.originals: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity, value)
        found = self.by_value.get(key)
        if found is None:
            n = self._counts.get(entity, 0) + 1
            self._counts[entity] = n
            found = self.by_value[key] = f"[{entity}_{n}]"
            self.originals[found] = value
        return found


def redact(text: str, spans: list[Span], replacement: Callable[[str, str], str]) -> str:
    """`text` with each span (sorted, not overlapping) replaced by replacement(kind, original)."""
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for start, end, kind in spans:
        parts.append(text[pos:start])
        parts.append(replacement(kind, text[start:end]))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


@dataclass
class Verdict:
    """What the input rails decided. Never log `messages`, `prompt` or `placeholders`: they hold text."""

    categories: list[str]
    action: str  # "pass" | "respond" | "block"
    profile: str
    locale: str
    actions: dict[str, str] = field(default_factory=dict)  # fired category -> the policy's action
    messages: list[dict[str, Any]] | None = None  # chat: the messages to send upstream
    prompt: str | list[Any] | None = None  # completions: the prompt to send upstream
    body: dict[str, Any] | None = None  # responses: the body keys to replace upstream
    # new text per slot path (inputs.Path) of the request body: redactions, neutralised control strings
    rewrites: dict[tuple[str | int, ...], str] = field(default_factory=dict, repr=False)
    # the start of the answer written by the caller (an assistant prefill the model continues), as forwarded
    prefill: str = field(default="", repr=False)
    response_text: str | None = None
    error_message: str | None = None
    events: Events = field(default_factory=list)
    placeholder_map: PlaceholderMap = field(default_factory=PlaceholderMap, repr=False)
    # notices the answer must carry: "crisis_resources" and/or "urgent_care_notice"
    notices: list[str] = field(default_factory=list)
    # categories raised only by a weak signal, which take the profile's model_action: a learned detector (the
    # rules missed them) or an injection quoted as an example (rules.injection.quoted_examples_only); not a
    # metric label
    model_categories: list[str] = field(default_factory=list)

    @property
    def placeholders(self) -> dict[str, str]:
        """Placeholder -> the caller's original value (for restoring the answer; never log it)."""
        return self.placeholder_map.originals

    @property
    def header_value(self) -> str:
        """Value of the x-angel-safety header."""
        return ",".join(self.categories)
