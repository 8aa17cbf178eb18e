"""SafetyEngine: input rails over OpenAI chat messages and completion prompts, and output guards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server.safety.gate import GateSet
from server.safety.normalize import char_map, has_cjk, locale_of, match_view, normalize
from server.safety.output import OutputGuard
from server.safety.phi import find_phi
from server.safety.phi import patterns as phi_patterns
from server.safety.policy import (
    CATEGORIES,
    LEARNED_CATEGORIES,
    LocaleTexts,
    Policy,
    ProfilePolicy,
    SafetyPolicyError,
    load_policy,
)
from server.safety.rules import all_patterns as rule_patterns
from server.safety.rules import crisis, emergency, injection
from server.safety.verdict import PlaceholderMap, Span, Verdict, redact

if TYPE_CHECKING:
    from server.safety.learned.model import LearnedModel

# roles whose text is the caller's own words (crisis, emergency); tool output may carry injected text
_SPEAKER_ROLES = frozenset({"user"})
_INJECTION_ROLES = frozenset({"user", "tool", "function"})


@dataclass
class _Segment:
    """One piece of caller text (a message's content or one text part, or one prompt)."""

    role: str
    raw: str
    norm: str
    view: str
    spans: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)


class SafetyEngine:
    def __init__(self, policy: Policy, model_path: str | None = None) -> None:
        """`model_path`: weights for the learned detectors (None: the ones shipped in the package); read only
        when a profile turns a category's model on. SafetyPolicyError if they cannot be used."""
        self.policy = policy
        # one literal pass per text serves every rail, PHI included
        self._gates = GateSet([*rule_patterns(), *phi_patterns()])
        self.warnings: list[str] = []
        if not policy.resources_verified:
            self.warnings.append(
                "safety policy: crisis resources and emergency numbers are unverified defaults "
                "(set resources_verified: true after checking them for your region)"
            )
        self.learned_model: LearnedModel | None = None
        needed = [c for c in LEARNED_CATEGORIES if any(p.model_on(c) for p in policy.profiles.values())]
        if needed:
            self.learned_model = _load_learned_model(model_path)
            missing = [c for c in needed if c not in self.learned_model.categories]
            if missing:
                raise SafetyPolicyError(
                    f"the learned model has no weights for {', '.join(missing)} (it has "
                    f"{', '.join(self.learned_model.categories)}); retrain it or set "
                    f"`model: false` under {missing[0]} in every profile"
                )

    @classmethod
    def from_policy_file(cls, path: str | None, model_path: str | None = None) -> SafetyEngine:
        """The engine for the policy at `path` (None: the built-in default); SafetyPolicyError if unusable."""
        return cls(load_policy(path), model_path)

    @property
    def profile_names(self) -> list[str]:
        return list(self.policy.profiles)

    @property
    def default_profile(self) -> str:
        return self.policy.default_profile

    def resolve_profile(self, profile: str | None) -> tuple[str, ProfilePolicy]:
        """An unknown or missing profile falls back to the policy's default profile."""
        name = profile if profile in self.policy.profiles else self.policy.default_profile
        return name, self.policy.profiles[name]

    def texts(self, locale: str) -> LocaleTexts:
        return self.policy.locales[locale]  # type: ignore[index]

    # ---- input rails ------------------------------------------------------------------------------
    def check_input(self, messages: list[dict[str, Any]], profile: str | None) -> Verdict:
        """Rails over OpenAI chat messages; `verdict.messages` is what to send upstream."""
        name, prof = self.resolve_profile(profile)
        refs: list[tuple[int, int | None, _Segment]] = []  # (message index, part index or None, segment)
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict):
                continue
            role = str(msg.get("role", "user"))
            content = msg.get("content")
            if isinstance(content, str):
                refs.append((i, None, self._segment(role, content)))
            elif isinstance(content, list):
                for j, part in enumerate(content):
                    if (
                        isinstance(part, dict)
                        and part.get("type") == "text"
                        and isinstance(part.get("text"), str)
                    ):
                        refs.append((i, j, self._segment(role, part["text"])))
        verdict = self._decide([seg for _, _, seg in refs], name, prof)
        if verdict.action == "pass":
            verdict.messages = self._rewrite_messages(messages, refs, verdict)
        return verdict

    def check_prompt(self, prompt: str | list[Any], profile: str | None) -> Verdict:
        """Rails over a /v1/completions prompt (a string or a list of strings; token ids pass unchecked)."""
        name, prof = self.resolve_profile(profile)
        if isinstance(prompt, str):
            prompts: list[Any] = [prompt]
        else:
            prompts = list(prompt) if isinstance(prompt, list) else []
        segs = [self._segment("user", p) if isinstance(p, str) else None for p in prompts]
        verdict = self._decide([s for s in segs if s is not None], name, prof)
        if verdict.action == "pass":
            instruction = self._instruction(verdict)
            out: list[Any] = []
            for p, seg in zip(prompts, segs, strict=True):
                if seg is None:
                    out.append(p)
                    continue
                text = self._rewrite_text(seg, verdict)
                text = p if text is None else text
                # a raw completion has no system turn: the safety instruction leads the prompt instead
                out.append(f"{instruction}\n\n{text}" if instruction else text)
            verdict.prompt = out[0] if isinstance(prompt, str) else out
        return verdict

    def output_guard(self, verdict: Verdict) -> OutputGuard:
        _, prof = self.resolve_profile(verdict.profile)
        return OutputGuard(self.texts(verdict.locale), prof, verdict)

    # ---- internals ----------------------------------------------------------------------------------
    @staticmethod
    def _segment(role: str, text: str) -> _Segment:
        norm = normalize(text)
        return _Segment(role, text, norm, match_view(norm))

    @staticmethod
    def _speakers(segs: list[_Segment]) -> list[_Segment]:
        """Crisis and emergency read the caller's own words; with no user turn, every non-system text."""
        return [s for s in segs if s.role in _SPEAKER_ROLES] or [
            s for s in segs if s.role not in ("system", "developer", "assistant")
        ]

    def _detect(
        self, segs: list[_Segment], speaker: list[_Segment], prof: ProfilePolicy
    ) -> tuple[set[str], set[str]]:
        """Run the rails over every segment, recording spans on the segments; the categories that fired,
        and those that came from a weak signal alone (the learned model, an injection quoted as an
        example)."""
        speaker_ids = {id(s) for s in speaker}
        phi_entities = frozenset(prof.phi.entities) if prof.phi.entities else None
        fired: set[str] = set()
        # attacks quoted as examples in a text about injection: a weak signal, handled like a model-only hit
        quoted: set[str] = set()
        for seg in segs:
            hits = self._gates.scan(seg.view)
            if id(seg) in speaker_ids:
                for category, detect in (
                    (crisis.CATEGORY, crisis.detect),
                    (emergency.CATEGORY, emergency.detect),
                ):
                    spans = detect(seg.view, hits)
                    if spans:
                        seg.spans[category] = [(a, b, category) for a, b in spans]
                        fired.add(category)
            if seg.role in _INJECTION_ROLES:
                spans = injection.detect(seg.view, hits)
                if spans and injection.quoted_examples_only(seg.view, spans):
                    quoted.add("prompt_injection")
                elif spans:
                    seg.spans["prompt_injection"] = [(a, b, "prompt_injection") for a, b in spans]
                    fired.add("prompt_injection")
            phi = find_phi(seg.norm, phi_entities, seg.view, hits or None)
            if phi:
                seg.spans["phi"] = phi
                fired.add("phi")
        # the learned detectors read the same views as their rules (crisis, emergency: the caller's words;
        # injection: user and tool text), only for categories the rules did not find; one featurisation of a
        # text scores every category. They mark no span (there is nothing to cut out); the category then takes
        # the profile's model_action (see ProfilePolicy.model_action)
        model = self.learned_model
        wanted = (
            [c for c in LEARNED_CATEGORIES if c not in fired and prof.model_on(c)]
            if model is not None
            else []
        )
        by_model: set[str] = set()
        if wanted:
            for seg in segs:
                ask = [
                    c
                    for c in wanted
                    if c not in by_model
                    and (id(seg) in speaker_ids if c != "prompt_injection" else seg.role in _INJECTION_ROLES)
                ]
                if not ask:
                    continue
                hit = model.fired(seg.view)  # type: ignore[union-attr]
                by_model.update(c for c in ask if c in hit)
                if len(by_model) == len(wanted):
                    break
            fired |= by_model
        weak = by_model | (quoted - fired)
        return fired | weak, weak

    def _decide(self, segs: list[_Segment], name: str, prof: ProfilePolicy) -> Verdict:
        speaker = self._speakers(segs)
        fired, by_model = self._detect(segs, speaker, prof)
        categories = [c for c in CATEGORIES if c in fired]
        user_text = " ".join(s.norm for s in speaker[-3:])
        locale = (
            locale_of(user_text)
            if has_cjk(user_text)
            else "en"
            if user_text.strip()
            else self.policy.default_locale
        )
        verdict = Verdict(
            categories=categories,
            action="pass",
            profile=name,
            locale=locale,
            model_categories=[c for c in categories if c in by_model],
        )
        self._apply_actions(verdict, prof)
        return verdict

    def _apply_actions(self, verdict: Verdict, prof: ProfilePolicy) -> None:
        """Block beats respond beats pass; a pass carries the notices its annotations promise."""
        texts = self.texts(verdict.locale)
        categories = verdict.categories
        for c in categories:
            verdict.actions[c] = prof.model_action(c) if c in verdict.model_categories else prof.action(c)
            verdict.events.append((c, verdict.actions[c]))
        blocking = [c for c in categories if verdict.actions[c] == "block"]
        responding = [c for c in categories if verdict.actions[c] == "respond"]
        if blocking:
            verdict.action = "block"
            verdict.error_message = getattr(texts.block, blocking[0])
        elif responding:
            verdict.action = "respond"
            parts = [getattr(texts.respond, c) for c in responding]
            if "crisis_self_harm" in responding:
                parts.append(texts.crisis_resources)
            verdict.response_text = "\n\n".join(parts)
        else:
            if verdict.actions.get("medical_emergency") in ("annotate", "redact"):
                verdict.notices.append("urgent_care_notice")
            if verdict.actions.get("crisis_self_harm") in ("annotate", "redact"):
                verdict.notices.append("crisis_resources")

    def _instruction(self, verdict: Verdict) -> str:
        texts = self.texts(verdict.locale)
        keys = {
            "crisis_self_harm": texts.crisis_instruction,
            "medical_emergency": texts.emergency_instruction,
            "phi": texts.phi_instruction,
            "prompt_injection": texts.injection_instruction,
        }
        wanted = [
            c
            for c in CATEGORIES
            if verdict.actions.get(c) == "annotate"
            or (verdict.actions.get(c) == "redact" and c in ("crisis_self_harm", "medical_emergency"))
        ]
        return "\n\n".join(keys[c] for c in wanted)

    @staticmethod
    def _rewrite_text(seg: _Segment, verdict: Verdict) -> str | None:
        """The segment with redact-action spans replaced, or None when nothing changes."""
        spans: list[tuple[int, int, str]] = []
        for category, found in seg.spans.items():
            if verdict.actions.get(category) == "redact":
                spans.extend(found)
        if not spans:
            return None
        spans.sort()
        kept: list[tuple[int, int, str]] = []
        for span in spans:  # PHI inside an injection span goes with it
            if kept and span[0] < kept[-1][1]:
                if span[1] > kept[-1][1]:
                    kept[-1] = (kept[-1][0], span[1], kept[-1][2])
                continue
            kept.append(span)
        return _redact_raw(seg, kept, verdict.placeholder_map)

    def _rewrite_messages(
        self, messages: list[dict[str, Any]], refs: list[tuple[int, int | None, _Segment]], verdict: Verdict
    ) -> list[dict[str, Any]]:
        """A copy of the messages with redactions and the safety instruction (the caller's objects are
        left untouched)."""
        out: list[dict[str, Any]] = list(messages)
        for i, j, seg in refs:
            text = self._rewrite_text(seg, verdict)
            if text is None:
                continue
            msg = out[i] = dict(out[i]) if out[i] is messages[i] else out[i]
            if j is None:
                msg["content"] = text
            else:
                parts = msg["content"] = (
                    list(msg["content"]) if msg["content"] is messages[i].get("content") else msg["content"]
                )
                parts[j] = {**parts[j], "text": text}
        instruction = self._instruction(verdict)
        if instruction:
            first = out[0] if out else None
            if isinstance(first, dict) and first.get("role") in ("system", "developer"):
                content = first.get("content")
                if isinstance(content, list):
                    out[0] = {**first, "content": [*content, {"type": "text", "text": instruction}]}
                else:
                    out[0] = {**first, "content": f"{content or ''}\n\n{instruction}".lstrip()}
            else:
                out.insert(0, {"role": "system", "content": instruction})
        return out


def _load_learned_model(path: str | None) -> LearnedModel:
    """The learned detectors' weights, loaded once per process; one clear line if unusable."""
    try:
        from server.safety.learned.model import load_model
    except ImportError as exc:  # numpy missing: say so at start-up rather than serve without the detector
        raise SafetyPolicyError(
            f"the learned detectors need numpy ({exc}); install numpy or set `model: false` "
            "under crisis_self_harm, medical_emergency and prompt_injection in every "
            "profile"
        ) from None
    return load_model(path)


def _redact_raw(seg: _Segment, spans: list[tuple[int, int, str]], pmap: PlaceholderMap) -> str:
    """Redact the caller's own text (keeping their punctuation and letters) where spans can be mapped back.

    Spans were found on the normalised text. When normalisation changed nothing they apply as they are;
    otherwise the characters normalisation touched are mapped back one by one. If even that does not
    line up (NFKC composing across characters), the normalised text is forwarded instead.
    """
    if seg.raw == seg.norm:
        return _redact(seg.raw, spans, pmap)
    index = char_map(seg.raw, seg.norm)
    if index is None:
        return _redact(seg.norm, spans, pmap)
    mapped = [(index[a], index[b - 1] + 1, kind) for a, b, kind in spans]
    return _redact(seg.raw, mapped, pmap)


def _redact(text: str, spans: list[Span], pmap: PlaceholderMap) -> str:
    """PHI spans become typed placeholders kept in `pmap`; other categories' spans a fixed marker."""
    return redact(
        text,
        spans,
        lambda kind, value: (
            f"[REMOVED_{kind.upper()}]" if kind in CATEGORIES else pmap.placeholder(kind, value)
        ),
    )
