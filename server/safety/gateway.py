"""The safety layer's one door for the gateway: load the engine, check a request, guard its response.

    engine = load_engine(settings.safety_enabled, settings.safety_policy)   # None: safety off
    check = check_chat(engine, body["messages"], key.safety_profile)        # or check_completion(...)
    check.blocked / check.canned / check.apply_to(body)                      # refuse, answer, or forward
    guard = ResponseGuard(engine, check.verdicts, n)        # response_guard.py: per choice and channel

Nothing here knows HTTP: the gateway turns a blocked check into its 400, a canned answer into an
OpenAI-shaped response, and UncheckableInput into a 400 naming the parameter.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from server.safety.engine import SafetyEngine
from server.safety.inputs import UncheckableInput
from server.safety.verdict import Events, Verdict

log = logging.getLogger("server.safety")


class SafetyConfigError(Exception):
    """The safety policy could not be loaded (one clear line for the operator)."""


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
    warm_up(engine)
    return engine


# Text that reaches every lazily built table: the name lexicons and model, the learned detectors' weights,
# the PHI recognisers, both scripts.
_WARM_TEXTS = (
    "Hi, I'm Sarah Mitchell (DOB 03/04/1961), call 415-555-0132 about my HbA1c. It hurts so much.",
    "我叫欧阳娜娜，电话13800138000，住在北京市朝阳区建国路88号，最近头疼得厉害。",
)


def warm_up(engine: SafetyEngine) -> None:
    """Run the input rails and an output guard once over sample text, so that what they build at first use
    (lexicons, the name model, weights) is built at start-up, not during the first request of a patient.
    The gateway then freezes these objects out of the garbage collector's full passes (server/__main__.py)."""
    from server.safety.phi import zh_words

    zh_words.everyday_words()  # read only when a Chinese name is proposed; 0.4 s that no patient should wait
    for text in _WARM_TEXTS:
        verdict = engine.check_input([{"role": "user", "content": text}], None)
        guard = engine.output_guard(verdict)
        for word in re.findall(r"\S+\s*", text):  # as a stream: the hold rules read partial text too
            guard.feed(word)
        guard.finish()


@dataclass
class InputCheck:
    """The input rails' decision for one request (one verdict per completion prompt, one for a chat)."""

    verdicts: list[Verdict]
    kind: str  # "chat" | "completion" | "responses"
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
            body.update(self.verdicts[0].body or {})
        elif self.kind == "responses":
            body.update(self.verdicts[0].body or {})
        elif self.single_prompt:
            body["prompt"] = self.verdicts[0].prompt
        else:
            body["prompt"] = [v.prompt for v in self.verdicts]


def check_chat(
    engine: SafetyEngine,
    messages: list[dict[str, Any]],
    profile: str | None,
    prefill: bool = False,
    tools: Any = None,
) -> InputCheck:
    """`prefill`: the request continues its last (assistant) message (vLLM's `continue_final_message`);
    `tools`: the request's tool definitions (the template writes them into the prompt)."""
    if tools is None:
        return InputCheck([engine.check_input(messages, profile, prefill)], "chat")
    return InputCheck([engine.check_input(messages, profile, prefill, tools)], "chat")


def check_completion(engine: SafetyEngine, prompt: str | list[Any], profile: str | None) -> InputCheck:
    """One verdict per prompt; token-id prompts raise UncheckableInput (they would slip past every rail)."""
    if isinstance(prompt, str):
        return InputCheck([engine.check_prompt(prompt, profile)], "completion")
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        verdicts = [engine.check_prompt(p, profile) for p in prompt]
        return InputCheck(verdicts, "completion", single_prompt=False)
    raise UncheckableInput("Token-id prompts are not accepted while the safety layer is on.", "prompt")


def check_responses(engine: SafetyEngine, body: dict[str, Any], profile: str | None) -> InputCheck:
    """Rails over a /v1/responses request's `instructions` and `input` items."""
    return InputCheck([engine.check_responses(body, profile)], "responses")
