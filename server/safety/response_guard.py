"""The output guard over every field of an OpenAI answer the client receives.

One `ResponseGuard` per request holds one OutputGuard per (choice, channel): the content (with its
logprobs), the reasoning text, and each tool call's arguments; completions have their text and logprobs.
Logprobs travel with the text they describe: a held token's logprob entry is held with it, and an entry
whose text the guard changed is rewritten to the text sent (its alternatives dropped, since they could
spell what was cut).
"""

from __future__ import annotations

from typing import Any

from server.safety.engine import SafetyEngine
from server.safety.output import OutputGuard, Unit
from server.safety.verdict import Events, Verdict

# What a client sees when an output guard stops an answer and the policy gives no message of its own.
STOPPED = "The answer was stopped by the safety policy."
CONTENT = "content"
_REASONING = ("reasoning_content", "reasoning")


class ResponseGuard:
    """Output guards for one request: per choice index and channel (n > 1 and multi-prompt completions
    get one each)."""

    def __init__(self, engine: SafetyEngine, verdicts: list[Verdict], n: int = 1) -> None:
        self.engine = engine
        self.verdicts = verdicts
        self.n = max(n, 1)
        self._guards: dict[tuple[int, str], OutputGuard] = {}
        self._finished: set[tuple[int, str]] = set()

    def guard(self, index: int, channel: str = CONTENT) -> OutputGuard:
        g = self._guards.get((index, channel))
        if g is None:
            verdict = self.verdicts[min(index // self.n, len(self.verdicts) - 1)]
            # notices, crisis resources and a prefill belong to the answer's text, not to its side channels
            g = self._guards[(index, channel)] = self.engine.output_guard(verdict, content=channel == CONTENT)
        return g

    # ---- streamed chunks --------------------------------------------------------------------------------
    def apply_chunk(self, choices: list[dict[str, Any]], chat: bool) -> str | None:
        """Run streamed choices through their guards in place; returns a block message if one blocks."""
        for ch in choices:
            index = ch.get("index", 0)
            done = ch.get("finish_reason") is not None
            if chat:
                blocked = self._chat_delta(ch, index, done)
            else:
                blocked = self._text_field(ch, index, done, legacy=True)
            if blocked is not None:
                return blocked
        return None

    def _chat_delta(self, ch: dict[str, Any], index: int, done: bool) -> str | None:
        delta = ch.get("delta")
        if delta is not None and not isinstance(delta, dict):
            raise TypeError("streamed delta is not an object")
        delta = delta or {}
        text = delta.get(CONTENT)
        lp = ch.get("logprobs")
        entries = lp.get(CONTENT) if isinstance(lp, dict) else None
        units = self._step(index, CONTENT, text, entries, done)
        if units is None:
            return self._block_message(index, CONTENT)
        if text is not None or units:
            if not isinstance(ch.get("delta"), dict):
                ch["delta"] = delta
            delta[CONTENT] = "".join(u.text for u in units)
        if isinstance(lp, dict) or any(u.payload is not None for u in units):
            ch["logprobs"] = {**(lp if isinstance(lp, dict) else {}), CONTENT: _chat_entries(units)}
        for key in _REASONING:
            if isinstance(delta.get(key), str) or (done and (index, key) in self._guards):
                out = self._step(index, key, delta.get(key), None, done)
                if out is None:
                    return self._block_message(index, key)
                if key in delta or out:
                    delta[key] = "".join(u.text for u in out)
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                channel = f"tool:{call.get('index', 0)}"
                out = self._step(index, channel, fn["arguments"], None, False)
                if out is None:
                    return self._block_message(index, channel)
                fn["arguments"] = "".join(u.text for u in out)
        if done:  # tool arguments still held go out with the finish chunk, as one more piece
            tails = self._finish_tools(index)
            if tails is None:
                return STOPPED
            if tails:
                delta.setdefault("tool_calls", []).extend(tails)
                ch["delta"] = delta
        return None

    def _text_field(self, ch: dict[str, Any], index: int, done: bool, legacy: bool) -> str | None:
        text = ch.get("text")
        if text is not None and not isinstance(text, str):
            raise TypeError("streamed text is not a string")
        lp = ch.get("logprobs") if isinstance(ch.get("logprobs"), dict) else None
        units = self._step(index, CONTENT, text, lp, done)
        if units is None:
            return self._block_message(index, CONTENT)
        ch["text"] = "".join(u.text for u in units)
        if lp is not None or any(u.payload is not None for u in units):
            ch["logprobs"] = _legacy_logprobs(units)
        return None

    def _step(self, index: int, channel: str, text: Any, payload: Any, done: bool) -> list[Unit] | None:
        """Feed one piece to a channel's guard (finishing it at the choice's end); None when it blocked."""
        if text is not None and not isinstance(text, str):
            raise TypeError("streamed text is not a string")
        g = self.guard(index, channel)
        units = g.feed_unit(text or "", payload) if (text or payload is not None) else []
        if done and (index, channel) not in self._finished:
            self._finished.add((index, channel))
            units += g.finish_units()
        return None if g.blocked else units

    def _finish_tools(self, index: int) -> list[dict[str, Any]] | None:
        tails = []
        for (i, channel), g in list(self._guards.items()):
            if i != index or not channel.startswith("tool:") or (i, channel) in self._finished:
                continue
            self._finished.add((i, channel))
            text = g.finish()
            if g.blocked:
                return None
            if text:
                tails.append({"index": int(channel[5:]), "function": {"arguments": text}})
        return tails

    def _block_message(self, index: int, channel: str) -> str:
        return self.guard(index, channel).block_message or STOPPED

    # ---- whole answers ----------------------------------------------------------------------------------
    def apply_choice(self, ch: dict[str, Any], chat: bool) -> str | None:
        """A whole (non-streamed) choice through its guards, in place; a block message if one blocks."""
        index = ch.get("index", 0)
        if not chat:
            return self._text_field(ch, index, True, legacy=True)
        msg = ch.get("message")
        if not isinstance(msg, dict):
            return None
        lp = ch.get("logprobs")
        entries = lp.get(CONTENT) if isinstance(lp, dict) else None
        if isinstance(msg.get(CONTENT), str):
            units = self._whole(index, CONTENT, msg[CONTENT], entries)
            if units is None:
                return self._block_message(index, CONTENT)
            msg[CONTENT] = "".join(u.text for u in units)
            if isinstance(entries, list):
                lp[CONTENT] = _chat_entries(units)
        for key in _REASONING:
            if isinstance(msg.get(key), str):
                out = self._whole(index, key, msg[key], None)
                if out is None:
                    return self._block_message(index, key)
                msg[key] = "".join(u.text for u in out)
        for j, call in enumerate(msg.get("tool_calls") or ()):
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                out = self._whole(index, f"tool:{j}", fn["arguments"], None)
                if out is None:
                    return self._block_message(index, f"tool:{j}")
                fn["arguments"] = "".join(u.text for u in out)
        return None

    def apply_text(self, index: int, text: str) -> tuple[str, str | None]:
        """A whole answer's text through its content guard: (released text, block message or None)."""
        units = self._whole(index, CONTENT, text or "", None)
        if units is None:
            return "", self._block_message(index, CONTENT)
        return "".join(u.text for u in units), None

    def _whole(self, index: int, channel: str, text: str, entries: Any) -> list[Unit] | None:
        """Feed a whole text, token by token when its logprob entries spell it exactly (so each entry stays
        with its token), else at once."""
        g = self.guard(index, channel)
        self._finished.add((index, channel))
        units: list[Unit] = []
        tokens = [e.get("token") for e in entries] if isinstance(entries, list) else None
        if tokens and all(isinstance(t, str) for t in tokens) and "".join(tokens) == text:
            for entry, token in zip(entries, tokens, strict=True):
                units += g.feed_unit(token, [entry])
        else:
            units += g.feed_unit(text, entries if isinstance(entries, list) else None)
        units += g.finish_units()
        return None if g.blocked else units

    def finish_all(self) -> tuple[list[tuple[int, str]], str | None]:
        """Content still held when the upstream ends without a finish chunk: (index, text) pairs."""
        tails: list[tuple[int, str]] = []
        for (index, channel), g in list(self._guards.items()):
            if channel != CONTENT or (index, channel) in self._finished:
                continue
            self._finished.add((index, channel))
            text = g.finish()
            if g.blocked:
                return [], g.block_message or STOPPED
            if text:
                tails.append((index, text))
        return tails, None

    def events(self) -> Events:
        return [event for g in self._guards.values() for event in g.events]


def _chat_entries(units: list[Unit]) -> list[dict[str, Any]]:
    """The logprob entries of the released units; a changed unit's entries become one entry for the text
    actually sent (no alternatives)."""
    out: list[dict[str, Any]] = []
    for unit in units:
        entries = unit.payload if isinstance(unit.payload, list) else []
        if not unit.changed:
            out.extend(entries)
        elif unit.text and entries:
            worst = min((e.get("logprob", 0.0) for e in entries if isinstance(e, dict)), default=0.0)
            out.append(
                {"token": unit.text, "logprob": worst, "bytes": list(unit.text.encode()), "top_logprobs": []}
            )
    return out


def _legacy_logprobs(units: list[Unit]) -> dict[str, list[Any]]:
    """Completions' logprobs (tokens, token_logprobs, top_logprobs, text_offset) of the released units,
    with a changed unit's tokens replaced by the text sent."""
    out: dict[str, list[Any]] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for unit in units:
        lp = unit.payload if isinstance(unit.payload, dict) else None
        if lp is None:
            continue
        if not unit.changed:
            for key in out:
                out[key].extend(lp.get(key) or [])
        elif unit.text:
            logprobs = [x for x in lp.get("token_logprobs") or [] if isinstance(x, (int, float))]
            offsets = lp.get("text_offset") or [None]
            out["tokens"].append(unit.text)
            out["token_logprobs"].append(min(logprobs, default=0.0))
            out["top_logprobs"].append(None)
            out["text_offset"].append(offsets[0])
    return out
