"""Output rails: a hold-back window over the streamed answer.

Text is released only after it has been checked: up to the last sentence end, or, in a long run without
one, all but a short tail (never splitting a word, a number or a placeholder). Released text has the PHI
the model wrote redacted, the caller's own placeholders restored (when the policy says so), and any
self-harm method instructions cut and replaced. The urgent-care notice leads the answer; the crisis
resources are guaranteed by finish().
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from server.safety.gate import GateSet
from server.safety.normalize import match_view
from server.safety.phi import find_phi
from server.safety.rules import crisis
from server.safety.verdict import redact

if TYPE_CHECKING:
    from server.safety.policy import LocaleTexts, ProfilePolicy
    from server.safety.verdict import Verdict

_TAIL = 48  # characters always held back in a long run without a sentence end (longest identifier we redact)
_SENTENCE_END = re.compile(r"[。！？!?\n]|[.;:](?=\s)")
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9@._%+\-/:#\[\]()]")


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


class OutputGuard:
    """Checks one answer (one choice) as it streams. feed() returns what may be sent now."""

    def __init__(self, texts: LocaleTexts, profile: ProfilePolicy, verdict: Verdict) -> None:
        self.texts = texts
        self.verdict = verdict
        out = profile.output
        self.window = out.hold_back_chars
        self.redact_phi = out.redact_phi
        crisis_fired = "crisis_self_harm" in verdict.categories
        self.methods = (
            "allow" if out.methods_only_after_crisis and not crisis_fired else out.self_harm_methods
        )
        self.restore = dict(verdict.placeholders) if profile.phi.restore_in_answer else {}
        self.need_notice = "urgent_care_notice" in verdict.notices
        self.need_resources = "crisis_resources" in verdict.notices
        self.blocked = False
        self.block_message: str | None = None
        self.events: list[tuple[str, str]] = []
        self._buf = ""
        self._recent = ""  # released text kept as context for the method check
        self._cut = False
        self._finished = False
        self._notice_sent = False
        self._resources_sent = False
        self._phi_seen: set[str] = set()

    # ---- public -------------------------------------------------------------------------------------
    def feed(self, text: str) -> str:
        if self._finished or self.blocked or self._cut:
            return ""
        self._buf += text
        return self._lead(self._release(final=False))

    def finish(self) -> str:
        if self._finished:
            return ""
        self._finished = True
        if self.blocked:
            return ""
        out = self._lead(self._release(final=True))
        if self.need_resources and not self._resources_sent:
            self._resources_sent = True
            self.events.append(("crisis_self_harm", "annotate"))
            out += ("\n\n" if out or self._recent else "") + self.texts.crisis_resources
        return out

    def check_text(self, text: str) -> str:
        """A whole (non-streamed) answer: feed + finish."""
        return self.feed(text) + self.finish()

    # ---- internals ----------------------------------------------------------------------------------
    def _lead(self, out: str) -> str:
        """The urgent-care notice goes out first, with the first feed() (even before any text is released)."""
        if self.need_notice and not self._notice_sent:
            self._notice_sent = True
            self.events.append(("medical_emergency", "annotate"))
            return self.texts.urgent_care_notice + "\n\n" + out
        return out

    def _cut_point(self) -> int:
        buf = self._buf
        last = None
        for m in _SENTENCE_END.finditer(buf):
            last = m
        cut = last.end() if last is not None else 0
        tail = min(_TAIL, self.window // 2)
        if cut == 0 and len(buf) > self.window:
            cut = len(buf) - tail
            while cut > 0 and _TOKEN_CHAR.match(buf[cut - 1]) and _TOKEN_CHAR.match(buf[cut]):
                cut -= 1
            if cut == 0 and len(buf) > 4 * self.window:  # one huge token: bound the memory we hold
                cut = len(buf) - tail
        # never split a placeholder such as [PHONE_1]
        open_at = buf.rfind("[", 0, cut)
        if open_at != -1 and buf.rfind("]", 0, cut) < open_at and cut - open_at < 32:
            cut = open_at
        return cut

    def _release(self, final: bool) -> str:
        cut = len(self._buf) if final else self._cut_point()
        if cut <= 0:
            return ""
        spans = find_phi(self._buf) if self.redact_phi else []
        if not final:
            for start, end, _ in spans:
                if start < cut < end or (end == len(self._buf) and start < cut):
                    cut = min(cut, start)  # the identifier may still be growing: hold all of it
            if cut <= 0:
                return ""
        segment, self._buf = self._buf[:cut], self._buf[cut:]
        spans = [s for s in spans if s[1] <= cut]
        if self.methods != "allow":
            hit = _method_hit(self._recent[-200:] + segment)
            if hit is not None:
                return self._cut_methods(segment, spans, max(0, hit.start() - len(self._recent[-200:])))
        return self._emit(segment, spans)

    def _emit(self, segment: str, spans: list[tuple[int, int, str]]) -> str:
        for _, _, entity in spans:
            if entity not in self._phi_seen:
                self._phi_seen.add(entity)
                self.events.append(("phi", "redact"))
        segment = redact(segment, spans, lambda entity, _: f"[{entity}]")
        for placeholder, original in self.restore.items():
            if placeholder in segment:
                segment = segment.replace(placeholder, original)
        self._recent = (self._recent + segment)[-400:]
        return segment

    def _cut_methods(self, segment: str, spans: list[tuple[int, int, str]], hit_at: int) -> str:
        # keep the sentences before the one that gives a method
        starts = [m.end() for m in _SENTENCE_END.finditer(segment, 0, hit_at)]
        keep = starts[-1] if starts else 0
        if self.methods == "block":
            self.blocked = True
            self.block_message = self.texts.output_block
            self.events.append(("crisis_self_harm", "block"))
            self._buf = ""
            return ""
        self._cut = True
        self._buf = ""
        self.events.append(("crisis_self_harm", "redact"))
        before = self._emit(segment[:keep], [s for s in spans if s[1] <= keep])
        self._resources_sent = True
        sep = "\n\n" if before.strip() else ""
        return f"{before}{sep}{self.texts.method_replacement}\n\n{self.texts.crisis_resources}"
