"""SafetyEngine: the input rails over what a request gives the model, and output guards for its answer.

A request is read as turns (inputs.py: one per message or prompt, with every text the template renders) and
each turn as documents (document.py: its texts joined the ways the model and an evader could join them).
Crisis and emergency read the turns of the profile's speaker roles; injection and PHI read every turn.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server.safety.document import Document, Piece, documents, redact_piece
from server.safety.gate import GateSet, Hits
from server.safety.inputs import Path, Turn, chat_turns, prompt_turns, responses_turns, tool_turns, write_back
from server.safety.normalize import has_cjk, locale_of, plain_reading
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
from server.safety.verdict import Span, Verdict

if TYPE_CHECKING:
    from server.safety.learned.model import LearnedModel

_SPEAKER_RAILS = ((crisis.CATEGORY, crisis.detect), (emergency.CATEGORY, emergency.detect))
_INJECTION = injection.CATEGORY
_NOT_SPEAKERS = frozenset({"system", "developer", "assistant"})
# A template control string is made plain text by a WORD JOINER after its first character: it reads the same,
# but the tokenizer no longer turns it into the special token that opens or closes a turn.
_JOINER = "\u2060"


@dataclass
class _Read:
    """One turn as the rails read it, and what they found: per category, spans in one of its documents."""

    role: str
    templated: bool
    pieces: list[Piece]
    docs: list[Document]
    found: dict[str, list[tuple[Document, Span]]] = field(default_factory=lambda: defaultdict(list))
    scores: list[float] | None = None  # the learned detectors' scores of the faithful view, once computed

    @property
    def faithful(self) -> Document:
        return self.docs[0]


class SafetyEngine:
    def __init__(self, policy: Policy, model_path: str | None = None) -> None:
        """`model_path`: weights for the learned detectors (None: the ones shipped in the package); read only
        when a profile turns a category's model on. SafetyPolicyError if they cannot be used."""
        self.policy = policy
        # one literal pass per text serves every rail, PHI included
        self._gates = GateSet([*rule_patterns(), *phi_patterns()])
        self._control = tuple(policy.control_strings)
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
    def check_input(
        self, messages: list[Any], profile: str | None, prefill: bool = False, tools: Any = None
    ) -> Verdict:
        """Rails over OpenAI chat messages (and the request's tool definitions); `verdict.messages` is what to
        send upstream, `verdict.body` the tools when they changed. `prefill`: the last message is an
        assistant turn the model continues (its text is the start of the answer)."""
        verdict, reads = self._check([*tool_turns(tools), *chat_turns(messages)], profile)
        if verdict.action == "pass":
            rewritten = write_back({"messages": messages, "tools": tools}, verdict.rewrites)
            out = rewritten["messages"]
            if rewritten["tools"] is not tools:
                verdict.body = {"tools": rewritten["tools"]}
            verdict.messages = self._with_instruction(out, self._instruction(verdict))
            last = reads[-1] if reads else None
            if prefill and last is not None and last.role == "assistant":
                verdict.prefill = "".join(verdict.rewrites.get(p.path, p.raw) for p in last.pieces)
        return verdict

    def check_prompt(self, prompt: str | list[Any], profile: str | None) -> Verdict:
        """Rails over a /v1/completions prompt (a string or a list of strings; UncheckableInput for token
        ids). `verdict.prompt` is what to send upstream, led by the safety instruction when there is one (a
        raw completion has no system turn)."""
        verdict, _ = self._check(prompt_turns(prompt), profile)
        if verdict.action == "pass":
            out = write_back({"prompt": prompt}, verdict.rewrites)["prompt"]
            instruction = self._instruction(verdict)
            if instruction:
                out = (
                    f"{instruction}\n\n{out}"
                    if isinstance(out, str)
                    else [f"{instruction}\n\n{p}" for p in out]
                )
            verdict.prompt = out
        return verdict

    def check_responses(self, body: dict[str, Any], profile: str | None) -> Verdict:
        """Rails over a /v1/responses request (instructions and input items); `verdict.body` holds the
        body keys to replace upstream (`input`, `instructions`)."""
        verdict, _ = self._check(responses_turns(body), profile)
        if verdict.action == "pass":
            out = write_back(
                {k: body[k] for k in ("input", "instructions", "tools") if k in body}, verdict.rewrites
            )
            instruction = self._instruction(verdict)
            if instruction:
                given = out.get("instructions")
                out["instructions"] = (
                    f"{given}\n\n{instruction}" if isinstance(given, str) and given else instruction
                )
            verdict.body = out
        return verdict

    def output_guard(self, verdict: Verdict, content: bool = True) -> OutputGuard:
        """A guard for one stream of the answer (`content`: its text; False: a reasoning or tool channel)."""
        _, prof = self.resolve_profile(verdict.profile)
        return OutputGuard(self.texts(verdict.locale), prof, verdict, content=content)

    # ---- internals ----------------------------------------------------------------------------------
    def _check(self, turns: list[Turn], profile: str | None) -> tuple[Verdict, list[_Read]]:
        name, prof = self.resolve_profile(profile)
        reads = [_Read(t.role, t.templated, *documents(t)) for t in turns]
        speakers = [r for r in reads if r.role in prof.speaker_roles] or [
            r for r in reads if r.role not in _NOT_SPEAKERS
        ]
        fired, weak = self._detect(reads, speakers, prof)
        categories = [c for c in CATEGORIES if c in fired]
        user_text = " ".join(r.faithful.text for r in speakers[-3:])
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
            model_categories=[c for c in categories if c in weak],
        )
        self._apply_actions(verdict, prof)
        if verdict.action == "pass":
            verdict.rewrites = self._rewrites(reads, verdict)
        return verdict, reads

    def _detect(
        self, reads: list[_Read], speakers: list[_Read], prof: ProfilePolicy
    ) -> tuple[set[str], set[str]]:
        """Run the rails over every turn, recording spans; the categories that fired, and those that came
        from a weak signal alone (the learned model, an injection quoted as an example)."""
        speaker_ids = {id(r) for r in speakers}
        entities = frozenset(prof.phi.entities) if prof.phi.entities else None
        fired: set[str] = set()
        quoted: set[str] = set()  # attacks quoted as examples in a text about injection: a weak signal
        for read in reads:
            speaker = id(read) in speaker_ids
            by_rules: set[str] = set()
            for doc in read.docs:
                hits = self._gates.scan(doc.view)  # one literal pass serves every rail, PHI included
                if speaker:
                    for category, detect in _SPEAKER_RAILS:
                        self._record(read, doc, category, detect(doc.view, hits), by_rules)
                spans = injection.detect(doc.view, hits)
                if spans and injection.quoted_examples_only(doc.view, spans):
                    quoted.add(_INJECTION)
                else:
                    self._record(read, doc, _INJECTION, spans, by_rules)
                for span in find_phi(doc.text, entities, doc.view, hits or None):
                    if doc is read.faithful or _joins_pieces(read, doc, span):
                        read.found["phi"].append((doc, span))
                        fired.add("phi")
            vetoed = self._vetoed(read, by_rules, prof)
            fired |= by_rules - vetoed
            # a vetoed injection stays a weak signal, as a quoted attack does: annotated, never let through
            # unmarked (an attack the detector misjudges costs more than a benign text annotated); unless the
            # turn only asks about AI and instructs the assistant in nothing ("is the DAN jailbreak still a
            # thing?"): the rules hit a topic word, and the detector and the rules' reading agree
            if _INJECTION in vetoed and not injection.asked_about(read.faithful.view):
                quoted.add(_INJECTION)
            if read.templated and any(c in p.raw for p in read.pieces for c in self._control):
                fired.add(_INJECTION)  # a forged turn boundary; neutralised whatever the action
            self._read_plainly(read, speaker, fired)
        by_model = self._learned(reads, speaker_ids, prof, fired)
        fired |= by_model
        weak = by_model | (quoted - fired)
        return fired | weak, weak

    @staticmethod
    def _record(
        read: _Read, doc: Document, category: str, spans: list[tuple[int, int]], fired: set[str]
    ) -> None:
        if spans:
            read.found[category].extend((doc, (a, b, category)) for a, b in spans)
            fired.add(category)

    def _read_plainly(self, read: _Read, speaker: bool, fired: set[str]) -> None:
        """Spelled-out letters and leetspeak ("k i l l  m y s e l f", "k1ll mys3lf"): the rules also read a
        plain copy of the turn. It is not one character per character, so a hit there raises the category
        without a span to cut."""
        plain = plain_reading(read.faithful.view)
        if plain is None:
            return
        hits: Hits | None = None
        rails = [*(_SPEAKER_RAILS if speaker else ()), (_INJECTION, injection.detect)]
        for category, detect in rails:
            if category in fired:
                continue
            hits = self._gates.scan(plain) if hits is None else hits
            if detect(plain, hits):
                fired.add(category)

    def _learned(
        self, reads: list[_Read], speaker_ids: set[int], prof: ProfilePolicy, fired: set[str]
    ) -> set[str]:
        """The learned detectors read the same turns as their rules (crisis, emergency: the speakers;
        injection: every turn), only for categories the rules did not find; one featurisation of a text scores
        every category. They mark no span (there is nothing to cut out); the category then takes the
        profile's model_action (see ProfilePolicy.model_action)."""
        model = self.learned_model
        wanted = [c for c in LEARNED_CATEGORIES if c not in fired and prof.model_on(c)] if model else []
        by_model: set[str] = set()
        for read in reads if wanted else ():
            ask = [c for c in wanted if c not in by_model and (c == _INJECTION or id(read) in speaker_ids)]
            if not ask:
                continue
            hit = model.fired(read.faithful.view, self._scores(read))  # type: ignore[union-attr]
            if emergency.CATEGORY in hit and emergency.well_now(read.faithful.view):
                hit.remove(emergency.CATEGORY)  # the detector reads the symptoms, not that they are over
            if _INJECTION in hit and injection.asked_about(read.faithful.view):
                hit.remove(_INJECTION)  # it reads "jailbreak" in a question as it does in an attack
            by_model.update(c for c in ask if c in hit)
            if len(by_model) == len(wanted):
                break
        return by_model

    def _scores(self, read: _Read) -> list[float]:
        if read.scores is None:
            read.scores = self.learned_model.score_list(read.faithful.view)  # type: ignore[union-attr]
        return read.scores

    def _vetoed(self, read: _Read, by_rules: set[str], prof: ProfilePolicy) -> set[str]:
        """The categories the rules raised on this turn that its learned detector vetoes (where the profile
        runs the detector): it scores the turn far below its threshold, as it does teaching material,
        fiction, history and translations (train.py picks the line). Their spans are forgotten. Crisis said
        outright (a strong-tier rule) is never vetoed: a missed crisis costs the most."""
        model = self.learned_model
        if model is None or not model.vetoes:
            return set()
        # only hits in the text as written (the detector never read a re-joined document), and never a
        # crisis said outright
        ask = {c for c in by_rules if prof.model_on(c) and all(d is read.faithful for d, _ in read.found[c])}
        if crisis.CATEGORY in ask and crisis.said_outright(read.faithful.view):
            ask.discard(crisis.CATEGORY)
        if not ask:
            return set()
        vetoed = model.vetoed(ask, self._scores(read))  # type: ignore[union-attr]
        for c in vetoed:
            read.found[c].clear()
        return vetoed

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

    def _rewrites(self, reads: list[_Read], verdict: Verdict) -> dict[Path, str]:
        """New text per slot path: spans of redact-action categories cut (PHI as typed placeholders), and
        template control strings neutralised in templated turns."""
        redacting = [c for c, action in verdict.actions.items() if action == "redact"]
        out: dict[Path, str] = {}
        for read in reads:
            cuts: dict[int, list[tuple[int, int, str, bool, str]]] = defaultdict(list)
            for category in redacting:
                for doc, span in read.found.get(category, ()):
                    parts = doc.per_piece([span])
                    whole = "".join(read.pieces[k].raw_part(a, b) for k, a, b, _, _ in parts)
                    for k, a, b, kind, first in parts:
                        cuts[k].append((a, b, kind, first, whole))
            for k, piece in enumerate(read.pieces):
                text = piece.raw
                if cuts.get(k):
                    text = redact_piece(piece, _merged(cuts[k]), verdict.placeholder_map, _CATEGORY_SET)
                if read.templated:
                    text = self._neutralised(text)
                if text != piece.raw:
                    out[piece.path] = text
        return out

    def _neutralised(self, text: str) -> str:
        for control in self._control:
            if control in text:
                text = text.replace(control, control[0] + _JOINER + control[1:])
        return text

    @staticmethod
    def _with_instruction(messages: list[Any], instruction: str) -> list[Any]:
        """The safety instruction joins the first system or developer message, or leads as a system one."""
        if not instruction:
            return messages
        out = list(messages)
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


_CATEGORY_SET = frozenset(CATEGORIES)


def _joins_pieces(read: _Read, doc: Document, span: Span) -> bool:
    """An identifier that only the joined readings see: it spans two pieces ("555-01" + "42") and no
    identifier the faithful reading found covers any of it (an e-mail at the end of one part must not
    swallow the next part's first word)."""
    parts = doc.per_piece([span])
    if len(parts) < 2:
        return False
    faithful = read.faithful
    taken = [
        (k, a, b)
        for d, sp in read.found.get("phi", ())
        if d is faithful
        for k, a, b, _, _ in faithful.per_piece([sp])
    ]
    return not any(k == k2 and a < b2 and a2 < b for k, a, b, _, _ in parts for k2, a2, b2 in taken)


def _merged(cuts: list[tuple[int, int, str, bool, str]]) -> list[tuple[int, int, str, bool, str]]:
    """Overlapping cuts of one piece as one (PHI inside an injection span goes with it; the same identifier
    found in two readings is cut once)."""
    cuts = sorted(cuts)
    kept: list[tuple[int, int, str, bool, str]] = []
    for cut in cuts:
        if kept and cut[0] < kept[-1][1]:
            last = kept[-1]
            keep = last if last[3] or not cut[3] else cut
            kept[-1] = (last[0], max(last[1], cut[1]), keep[2], keep[3], keep[4])
            continue
        kept.append(cut)
    return kept


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
