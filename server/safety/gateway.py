"""The safety layer's one door for the gateway: load the engine, check a request, guard its response.

    engine = load_engine(settings.safety_enabled, settings.safety_policy)   # None: safety off
    check = check_chat(engine, body["messages"], key.safety_profile)        # or check_completion(...)
    check.blocked / check.canned / check.apply_to(body)                      # refuse, answer, or forward
    guard = ResponseGuard(engine, check.verdicts, n)                         # one output guard per choice

Nothing here knows HTTP: the gateway turns a blocked check into its 400, a canned answer into an
OpenAI-shaped response, and UncheckableInput into a 400 naming the parameter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from server.safety.engine import SafetyEngine
from server.safety.verdict import Events, Verdict

log = logging.getLogger("server.safety")

# What a client sees when an output guard stops an answer and the policy gives no message of its own.
_STOPPED = "The answer was stopped by the safety policy."


class SafetyConfigError(Exception):
    """The safety policy could not be loaded (one clear line for the operator)."""


class UncheckableInput(ValueError):
    """Input the rails cannot read (token ids): refused rather than forwarded unread."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def load_engine(enabled: bool, policy_path: str | None) -> SafetyEngine | None:
    """The engine for the policy at `policy_path` (None: the built-in one), or None when safety is off.

    A bad policy stops start-up: a misconfigured medical deployment must not silently serve without rails."""
    if not enabled:
        return None
    try:
        engine = SafetyEngine.from_policy_file(policy_path)
    except Exception as exc:
        raise SafetyConfigError(f"ANGEL_SAFETY_POLICY: {exc}") from exc
    for warning in engine.warnings:  # e.g. crisis resources not yet checked for the deployment's region
        log.warning(warning)
    return engine


@dataclass
class InputCheck:
    """The input rails' decision for one request (one verdict per completion prompt, one for a chat)."""

    verdicts: list[Verdict]
    kind: str  # "chat" | "completion"
    single_prompt: bool = True  # a completion prompt given as one string (not a list)

    @property
    def categories(self) -> list[str]:
        """Every category that fired, each once, prompt by prompt (the x-angel-safety header)."""
        return list(dict.fromkeys(c for v in self.verdicts for c in v.categories))

    @property
    def header_value(self) -> str:
        return ",".join(self.categories)

    @property
    def events(self) -> Events:
        return [event for v in self.verdicts for event in v.events]

    @property
    def blocked(self) -> str | None:
        """The refusal message when any verdict blocks, else None."""
        for v in self.verdicts:
            if v.action == "block":
                return v.error_message or "Request refused by policy."
        return None

    @property
    def canned(self) -> str | None:
        """The policy's own answer when any verdict responds instead of the model, else None."""
        return next((v.response_text for v in self.verdicts if v.action == "respond"), None)

    def apply_to(self, body: dict[str, Any]) -> None:
        """Put what the rails rewrote (redactions, the safety instruction) into the upstream body."""
        if self.kind == "chat":
            body["messages"] = self.verdicts[0].messages
        elif self.single_prompt:
            body["prompt"] = self.verdicts[0].prompt
        else:
            body["prompt"] = [v.prompt for v in self.verdicts]


def check_chat(engine: SafetyEngine, messages: list[dict[str, Any]], profile: str | None) -> InputCheck:
    return InputCheck([engine.check_input(messages, profile)], "chat")


def check_completion(engine: SafetyEngine, prompt: str | list[Any], profile: str | None) -> InputCheck:
    """One verdict per prompt; token-id prompts raise UncheckableInput (they would slip past every rail)."""
    if isinstance(prompt, str):
        return InputCheck([engine.check_prompt(prompt, profile)], "completion")
    if all(isinstance(p, str) for p in prompt):
        return InputCheck(
            [engine.check_prompt(p, profile) for p in prompt], "completion", single_prompt=False
        )
    raise UncheckableInput("Token-id prompts are not accepted while the safety layer is on.", "prompt")


class ResponseGuard:
    """One output guard per choice index (n > 1 and multi-prompt completions get one each)."""

    def __init__(self, engine: SafetyEngine, verdicts: list[Verdict], n: int = 1) -> None:
        self.engine = engine
        self.verdicts = verdicts
        self.n = max(n, 1)
        self._guards: dict[int, Any] = {}
        self._finished: set[int] = set()

    def guard(self, index: int) -> Any:
        g = self._guards.get(index)
        if g is None:
            verdict = self.verdicts[min(index // self.n, len(self.verdicts) - 1)]
            g = self._guards[index] = self.engine.output_guard(verdict)
        return g

    def apply_chunk(self, choices: list[dict[str, Any]], chat: bool) -> str | None:
        """Run streamed choices through their guards in place; returns a block message if one blocks."""
        for ch in choices:
            index = ch.get("index", 0)
            g = self.guard(index)
            delta = ch.get("delta") if chat else None
            text = (delta.get("content") if isinstance(delta, dict) else None) if chat else ch.get("text")
            if text is not None and not isinstance(text, str):
                raise TypeError("streamed text is not a string")
            out = g.feed(text) if text else ""
            if ch.get("finish_reason") is not None and index not in self._finished:
                self._finished.add(index)
                out += g.finish()
            if g.blocked:
                return g.block_message or _STOPPED
            if chat:
                if text is not None or out:
                    if not isinstance(delta, dict):
                        delta = ch["delta"] = {}
                    delta["content"] = out
            else:
                ch["text"] = out
        return None

    def apply_text(self, index: int, text: str) -> tuple[str, str | None]:
        """A whole (non-streamed) answer through its guard: (released text, block message or None)."""
        g = self.guard(index)
        out = g.feed(text or "") + g.finish()
        self._finished.add(index)
        if g.blocked:
            return "", g.block_message or _STOPPED
        return out, None

    def finish_all(self) -> tuple[list[tuple[int, str]], str | None]:
        """Text still held back when the upstream ends without a finish chunk: (index, text) pairs."""
        tails: list[tuple[int, str]] = []
        for index, g in self._guards.items():
            if index in self._finished:
                continue
            self._finished.add(index)
            text = g.finish()
            if g.blocked:
                return [], g.block_message or _STOPPED
            if text:
                tails.append((index, text))
        return tails, None

    def events(self) -> Events:
        return [event for g in self._guards.values() for event in g.events]
