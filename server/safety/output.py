"""Output rails: one answer's text checked as it streams, released at token speed.

Each piece of the answer (a streamed token, with its logprobs when the client asked for them) is a unit.
A unit is released as soon as nothing after it could still turn it into a match (holding.py says what
could); held units go out together later, with their logprobs, so a client's logprobs always describe the
text it received. Released text has the PHI the model wrote redacted, the caller's own placeholders
restored (when the policy says so), and self-harm method instructions cut and replaced; a unit whose
text changed is marked `changed`, and whoever shapes the chunk rewrites its logprobs to match. The
urgent-care notice leads the answer; the crisis resources are guaranteed by finish().
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from server.safety import holding
from server.safety.gate import GateSet
from server.safety.normalize import match_view
from server.safety.phi import find_phi
from server.safety.rules import crisis

if TYPE_CHECKING:
    from server.safety.policy import LocaleTexts, ProfilePolicy
    from server.safety.verdict import Verdict

_TAIL = 48  # characters kept back when the hold reaches its bound (longest identifier we redact)
_CONTEXT = 200  # released characters the rails read again for context ("MRN ", "my name is ", a sentence)
_SENTENCE_END = re.compile(r"[。！？!?\n]|[.;:](?=\s)")


@cache
def _methods() -> GateSet:
    """Self-harm method instructions as they appear in answers (rules/crisis/answers.yaml)."""
    return GateSet(rule.compile() for rule in crisis.answer_rules())


def _method_hit(text: str) -> re.Match[str] | None:
    """The earliest self-harm method instruction in `text` (rules are lower case: read the lower view)."""
    view = match_view(text)
    methods = _methods()
    hits = methods.scan(view)
    if not hits:
        return None
    found = [m for p in methods.patterns if p in hits for m in [p.search(view, hits)] if m is not None]
    return min(found, key=lambda m: m.start()) if found else None


@dataclass
class Unit:
    """A piece of the answer as released: its text, the payload it came with (logprobs; None for text the
    guard adds), and whether the text differs from what the model wrote."""

    text: str
    payload: Any = None
    changed: bool = False


@dataclass
class _Held:
    end: int  # where the unit ends in the held buffer
    payload: Any


class OutputGuard:
    """Checks one stream of answer text (one choice's content, reasoning or tool arguments).

    feed()/finish() take and give text; feed_unit()/finish_units() carry a payload per unit."""

    def __init__(
        self, texts: LocaleTexts, profile: ProfilePolicy, verdict: Verdict, *, content: bool = True
    ) -> None:
        """`content`: this guard reads the answer's text (it leads with the urgent-care notice, ends with the
        crisis resources and continues a prefill); False for a side channel (reasoning, tool arguments)."""
        self.texts = texts
        self.verdict = verdict
        out = profile.output
        self.window = out.hold_back_chars
        self.redact_phi = out.redact_phi
        crisis_fired = "crisis_self_harm" in verdict.categories
        self.methods = (
            "allow" if out.methods_only_after_crisis and not crisis_fired else out.self_harm_methods
        )
        self._doses = crisis_fired  # after a crisis message a dose may be the start of a method
        self.restore = dict(verdict.placeholders) if profile.phi.restore_in_answer else {}
        self.need_notice = content and "urgent_care_notice" in verdict.notices
        self.need_resources = content and "crisis_resources" in verdict.notices
        self.blocked = False
        self.block_message: str | None = None
        self.events: list[tuple[str, str]] = []
        self._buf = ""
        self._units: list[_Held] = []
        # released text: as the model wrote it (context for PHI) and as sent (context for the method check);
        # an assistant prefill is the answer's start
        prefill = verdict.prefill if content else ""
        self._raw = prefill[-_CONTEXT:]
        self._recent = prefill[-400:]
        self._cut = False
        self._finished = False
        self._notice_sent = False
        self._resources_sent = False
        self._phi_seen: set[str] = set()

    # ---- public -------------------------------------------------------------------------------------
    def feed(self, text: str) -> str:
        return "".join(u.text for u in self.feed_unit(text))

    def finish(self) -> str:
        return "".join(u.text for u in self.finish_units())

    def check_text(self, text: str) -> str:
        """A whole (non-streamed) answer: feed + finish."""
        return self.feed(text) + self.finish()

    def feed_unit(self, text: str, payload: Any = None) -> list[Unit]:
        """Take one piece of the answer; return the units that may be sent now."""
        if self._finished or self.blocked or self._cut:
            return []
        if text or payload is not None:
            self._buf += text
            self._units.append(_Held(len(self._buf), payload))
        return self._lead(self._release(final=False))

    def finish_units(self) -> list[Unit]:
        if self._finished:
            return []
        self._finished = True
        if self.blocked:
            return []
        out = self._lead(self._release(final=True))
        if self.need_resources and not self._resources_sent:
            self._resources_sent = True
            self.events.append(("crisis_self_harm", "annotate"))
            sep = "\n\n" if any(u.text for u in out) or self._recent else ""
            out.append(Unit(sep + self.texts.crisis_resources, changed=True))
        return out

    @property
    def held(self) -> int:
        """Characters held back right now (for the streaming benchmark)."""
        return len(self._buf)

    # ---- internals ----------------------------------------------------------------------------------
    def _lead(self, out: list[Unit]) -> list[Unit]:
        """The urgent-care notice goes out first, with the first feed (even before any text is released)."""
        if self.need_notice and not self._notice_sent:
            self._notice_sent = True
            self.events.append(("medical_emergency", "annotate"))
            return [Unit(self.texts.urgent_care_notice + "\n\n", changed=True), *out]
        return out

    def _hold_point(self) -> int:
        buf = self._buf
        cut = len(buf.rstrip())
        cut = min(
            cut,
            holding.identifier_tail(buf, self._raw),
            holding.chinese_clause(buf, self._raw[-_CONTEXT:]),
            holding.open_placeholder(buf),
            holding.name_before_cue(buf),
        )
        if self.methods != "allow":
            cut = min(cut, holding.method_sentence(self._recent[-_CONTEXT:], buf, self._doses))
        return holding.bounded(buf, cut, self.window, min(_TAIL, self.window // 2))

    def _release(self, final: bool) -> list[Unit]:
        buf = self._buf
        cut = len(buf) if final else self._hold_point()
        spans = self._phi(buf) if self.redact_phi else []
        if not final:
            for start, end, _ in spans:
                if start < cut < end or (end == len(buf) and start < cut):
                    cut = min(cut, max(start, 0))  # the identifier may still be growing: hold all of it
            cut = self._unit_boundary(cut)
        if cut <= 0:
            return []
        segment = buf[:cut]
        spans = [s for s in spans if s[1] <= cut]
        if self.methods != "allow":
            context = self._recent[-_CONTEXT:]
            hit = _method_hit(context + segment)
            if hit is not None:
                return self._cut_methods(segment, spans, max(0, hit.start() - len(context)))
        return self._emit(segment, spans)

    def _phi(self, buf: str) -> list[tuple[int, int, str]]:
        """PHI spans in the held text, read with the released text before it as context; a span that began
        in released text covers only its held part (what is out cannot be taken back)."""
        context = self._raw
        found = find_phi(context + buf) if buf.strip() else []
        n = len(context)
        return [(max(s - n, 0), e - n, kind) for s, e, kind in found if e > n]

    def _unit_boundary(self, cut: int) -> int:
        """A unit with a payload (logprobs) is released whole: move the cut back to its start."""
        start = 0
        for unit in self._units:
            if unit.end > cut:
                return cut if unit.payload is None else start
            start = unit.end
        return cut

    def _take(self, cut: int) -> list[tuple[int, int, Any]]:
        """Remove the first `cut` characters from the buffer; the units they make up, as (start, end,
        payload) in the removed text (a payload-less unit cut in two keeps its rest)."""
        taken: list[tuple[int, int, Any]] = []
        rest: list[_Held] = []
        start = 0
        for unit in self._units:
            if unit.end <= cut:
                taken.append((start, unit.end, unit.payload))
            elif start < cut:
                taken.append((start, cut, unit.payload))
                rest.append(_Held(unit.end - cut, None))
            else:
                rest.append(_Held(unit.end - cut, unit.payload))
            start = unit.end
        self._raw = (self._raw + self._buf[:cut])[-_CONTEXT:]
        self._buf, self._units = self._buf[cut:], rest
        return taken

    def _emit(self, segment: str, spans: list[tuple[int, int, str]]) -> list[Unit]:
        for _, _, entity in spans:
            if entity not in self._phi_seen:
                self._phi_seen.add(entity)
                self.events.append(("phi", "redact"))
        edits = [(s, e, f"[{entity}]") for s, e, entity in spans]
        for placeholder, original in self.restore.items():
            at = segment.find(placeholder)
            while at != -1:
                edits.append((at, at + len(placeholder), original))
                at = segment.find(placeholder, at + len(placeholder))
        units = _render(segment, self._take(len(segment)), _non_overlapping(edits))
        self._recent = (self._recent + "".join(u.text for u in units))[-400:]
        return units

    def _cut_methods(self, segment: str, spans: list[tuple[int, int, str]], hit_at: int) -> list[Unit]:
        # keep the sentences before the one that gives a method
        starts = [m.end() for m in _SENTENCE_END.finditer(segment, 0, hit_at)]
        keep = starts[-1] if starts else 0
        if self.methods == "block":
            self.blocked = True
            self.block_message = self.texts.output_block
            self.events.append(("crisis_self_harm", "block"))
            self._buf, self._units = "", []
            return []
        self._cut = True
        self.events.append(("crisis_self_harm", "redact"))
        before = self._emit(segment[:keep], [s for s in spans if s[1] <= keep]) if keep else []
        self._buf, self._units = "", []
        self._resources_sent = True
        sep = "\n\n" if "".join(u.text for u in before).strip() else ""
        replacement = f"{sep}{self.texts.method_replacement}\n\n{self.texts.crisis_resources}"
        return [*before, Unit(replacement, changed=True)]


def _non_overlapping(edits: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    kept: list[tuple[int, int, str]] = []
    for edit in sorted(edits):
        if not kept or edit[0] >= kept[-1][1]:
            kept.append(edit)
    return kept


def _render(segment: str, units: list[tuple[int, int, Any]], edits: list[tuple[int, int, str]]) -> list[Unit]:
    """The units' text with the edits applied; an edit's replacement goes to the unit where it starts, and a
    unit that an edit touches is `changed`."""
    out: list[Unit] = []
    k = 0
    for start, end, payload in units:
        pieces: list[str] = []
        pos, changed = start, False
        while k < len(edits) and edits[k][0] < end:
            a, b, text = edits[k]
            if a >= pos:
                pieces.append(segment[pos:a])
            if a >= start:
                pieces.append(text)
            changed = True
            if b > end:
                pos = end
                break
            pos = max(pos, b)
            k += 1
        if pos < end:
            pieces.append(segment[pos:end])
        out.append(Unit("".join(pieces), payload, changed))
    return out
