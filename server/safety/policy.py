"""The safety policy: a YAML file validated with pydantic at start-up, with clear one-line errors."""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from server.safety.phi import ENTITIES

CATEGORIES = ("crisis_self_harm", "medical_emergency", "phi", "prompt_injection")
# categories with a learned detector (learned/model.py) that can be OR'd with their rules
LEARNED_CATEGORIES = ("crisis_self_harm", "medical_emergency", "prompt_injection")
ACTIONS = ("allow", "annotate", "redact", "respond", "block")
LOCALES = ("en", "zh")
Action = Literal["allow", "annotate", "redact", "respond", "block"]


class SafetyPolicyError(ValueError):
    """The policy cannot be used; the message names the problem in one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryPolicy(_Strict):
    action: Action


class LearnedCategoryPolicy(CategoryPolicy):
    # the category's learned detector (learned/model.py) OR'd with the rules; false: the rules alone
    model: bool = True
    # the action for a hit that only the learned detector found (null: `action`); never harsher than `action`
    model_action: Action | None = None


class InjectionPolicy(LearnedCategoryPolicy):
    # a model-only injection hit is told to the model (annotate), not refused: a false positive must not
    # cost the caller their answer (a rule hit still takes `action`, block by default)
    model_action: Action | None = "annotate"


class PhiPolicy(CategoryPolicy):
    restore_in_answer: bool = True
    entities: list[str] | None = None

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: list[str] | None) -> list[str] | None:
        for entity in value or ():
            if entity not in ENTITIES:
                raise ValueError(f"unknown PHI entity {entity!r} (known: {', '.join(ENTITIES)})")
        return value


class OutputPolicy(_Strict):
    hold_back_chars: int = Field(160, ge=16, le=4000)
    redact_phi: bool = True
    self_harm_methods: Literal["allow", "redact", "block"] = "redact"
    methods_only_after_crisis: bool = False


Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ProfilePolicy(_Strict):
    # roles whose words the crisis and emergency rails read (the caller's own); injection and PHI read all
    speaker_roles: list[Role] = ["user"]
    crisis_self_harm: LearnedCategoryPolicy = LearnedCategoryPolicy(action="annotate")
    medical_emergency: LearnedCategoryPolicy = LearnedCategoryPolicy(action="annotate")
    phi: PhiPolicy = PhiPolicy(action="redact")
    prompt_injection: InjectionPolicy = InjectionPolicy(action="block")
    output: OutputPolicy = OutputPolicy()

    def action(self, category: str) -> str:
        return getattr(self, category).action

    def model_on(self, category: str) -> bool:
        """Whether the category's learned detector is OR'd with its rules in this profile."""
        return bool(getattr(getattr(self, category), "model", False))

    def model_action(self, category: str) -> str:
        """The action for a hit only the learned detector found: `model_action`, capped at `action`
        (order: allow < annotate < redact < respond < block)."""
        pol = getattr(self, category)
        want = getattr(pol, "model_action", None) or pol.action
        return want if ACTIONS.index(want) < ACTIONS.index(pol.action) else pol.action


class PerCategoryText(_Strict):
    crisis_self_harm: str
    medical_emergency: str
    phi: str
    prompt_injection: str


class LocaleTexts(_Strict):
    crisis_instruction: str
    crisis_resources: str
    emergency_instruction: str
    urgent_care_notice: str
    phi_instruction: str
    injection_instruction: str
    method_replacement: str
    respond: PerCategoryText
    block: PerCategoryText
    output_block: str


class Policy(_Strict):
    version: Literal[1] = 1
    default_profile: str = "patient"
    default_locale: Literal["en", "zh"] = "en"
    resources_verified: bool = False
    # the model's chat-template control strings: inside message text they are neutralised (a caller cannot
    # open or close a turn) and raise prompt_injection
    control_strings: list[str] = Field(
        default_factory=lambda: ["<role>", "</role>", "<|role_end|>", "<|startoftext|>", "<|endoftext|>"]
    )
    profiles: dict[str, ProfilePolicy]
    locales: dict[Literal["en", "zh"], LocaleTexts]

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if not self.profiles:
            raise ValueError("profiles: at least one profile is needed")
        if self.default_profile not in self.profiles:
            raise ValueError(
                f"default_profile {self.default_profile!r} is not one of the profiles "
                f"({', '.join(self.profiles)})"
            )
        for locale in LOCALES:
            if locale not in self.locales:
                raise ValueError(f"locales: missing locale {locale!r}")
        if any(len(c) < 2 for c in self.control_strings):
            raise ValueError("control_strings: each control string needs at least two characters")
        return self


def _builtin_dict() -> dict[str, Any]:
    text = resources.files("server.safety").joinpath("default_policy.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _merge_locales(data: dict[str, Any], builtin: dict[str, Any]) -> dict[str, Any]:
    """Fill locale texts the file leaves out from the built-in ones (a policy rarely rewrites them all)."""
    merged = dict(data)
    locales = data.get("locales")
    if locales is None:
        merged["locales"] = builtin["locales"]
        return merged
    if not isinstance(locales, dict):
        return merged  # let validation name the problem
    out: dict[str, Any] = {}
    for name, texts in locales.items():
        base = builtin["locales"].get(name, {})
        if isinstance(texts, dict):
            combined = {**base, **texts}
            for key in ("respond", "block"):
                if isinstance(texts.get(key), dict):
                    combined[key] = {**base.get(key, {}), **texts[key]}
            out[name] = combined
        else:
            out[name] = texts
    for name, texts in builtin["locales"].items():
        out.setdefault(name, texts)
    merged["locales"] = out
    return merged


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    where = f"{loc}: " if loc else ""
    if kind == "extra_forbidden":
        parent = err["loc"][:-1]
        key = err["loc"][-1]
        if len(parent) == 2 and parent[0] == "profiles":
            return (
                f"profiles.{parent[1]}: unknown category {key!r} "
                f"(expected one of: {', '.join(CATEGORIES)}, output)"
            )
        return f"{loc}: unknown key {key!r}"
    if kind == "literal_error" and loc.endswith((".action", ".model_action")):
        return f"{loc}: unknown action {err['input']!r} (expected one of: {', '.join(ACTIONS)})"
    if kind == "literal_error" and loc.startswith("locales."):
        return f"locales: unknown locale {err['input']!r} (expected one of: {', '.join(LOCALES)})"
    if kind == "missing":
        return f"{loc}: required field is missing"
    if kind in ("bool_parsing", "bool_type"):
        return f"{loc}: expected true or false (got {err['input']!r})"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}{msg}" + (
        f" (got {err['input']!r})"
        if kind.endswith(("_error", "_type")) and "input" in err and not isinstance(err["input"], dict)
        else ""
    )


def parse_policy(data: Any, source: str = "policy") -> Policy:
    if not isinstance(data, dict):
        raise SafetyPolicyError(f"{source}: the policy must be a YAML mapping, got {type(data).__name__}")
    try:
        return Policy.model_validate(_merge_locales(data, _builtin_dict()))
    except ValidationError as exc:
        raise SafetyPolicyError(f"{source}: {_first_error(exc)}") from None


def read_config_text(path: str, what: str, error: type[SafetyPolicyError] = SafetyPolicyError) -> str:
    """The text of a configuration file the operator named; `error` says which file and why when it cannot be
    read (the safety layer's policy and learned-model files share this)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}") from None


def load_policy(path: str | None) -> Policy:
    """The built-in policy for None, else the file at `path`; SafetyPolicyError names any problem."""
    if path is None:
        return parse_policy(_builtin_dict(), "built-in policy")
    text = read_config_text(path, f"safety policy {path}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SafetyPolicyError(f"safety policy {path} is not valid YAML{where}: {problem}") from None
    return parse_policy(data, f"safety policy {path}")
