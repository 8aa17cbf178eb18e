"""How the gateway uses the safety layer in `server/safety/` (owned separately).

The gateway only depends on this small surface: `SafetyEngine.from_policy_file`, `check_input`,
`check_prompt`, `output_guard`. If the package is missing or broken the gateway runs with safety off
and says so in its log; a bad policy file, however, stops start-up (a misconfigured medical deployment
must not silently serve without its rails).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("server.safety_glue")


class SafetyConfigError(Exception):
    """The safety policy could not be loaded (one clear line for the operator)."""


def load_safety_engine(enabled: bool, policy_path: str | None) -> Any | None:
    if not enabled:
        return None
    try:
        from server.safety import SafetyEngine
    except Exception as exc:  # noqa: BLE001 - missing or failing to import: serve without, loudly
        log.warning("safety layer unavailable; serving with safety off", extra={"error": type(exc).__name__})
        return None
    try:
        return SafetyEngine.from_policy_file(policy_path)
    except Exception as exc:
        raise SafetyConfigError(f"ANGEL_SAFETY_POLICY: {exc}") from exc


class GuardSet:
    """One output guard per choice index (n > 1 and multi-prompt completions get one each)."""

    def __init__(self, engine: Any, verdicts: list[Any], n: int = 1) -> None:
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
                return g.block_message or "The answer was stopped by the safety policy."
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
            return "", g.block_message or "The answer was stopped by the safety policy."
        return out, None

    def finish_all(self) -> tuple[list[tuple[int, str]], str | None]:
        tails: list[tuple[int, str]] = []
        for index, g in self._guards.items():
            if index in self._finished:
                continue
            self._finished.add(index)
            text = g.finish()
            if g.blocked:
                return [], g.block_message or "The answer was stopped by the safety policy."
            if text:
                tails.append((index, text))
        return tails, None

    def events(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for g in self._guards.values():
            out.extend(getattr(g, "events", None) or [])
        return out
