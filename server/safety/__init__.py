"""Medical safety layer: bilingual input rails (crisis, emergencies, PHI, prompt injection) and
streaming output rails, configured by a validated YAML policy with named profiles.

The gateway goes through one door, `server.safety.gateway`; README.md in this folder is the reference.
"""

from server.safety.engine import SafetyEngine
from server.safety.gateway import (
    InputCheck,
    SafetyConfigError,
    UncheckableInput,
    check_chat,
    check_completion,
    check_responses,
    load_engine,
)
from server.safety.output import OutputGuard
from server.safety.policy import CATEGORIES, SafetyPolicyError
from server.safety.response_guard import ResponseGuard
from server.safety.verdict import Verdict

__all__ = [
    "CATEGORIES",
    "InputCheck",
    "OutputGuard",
    "ResponseGuard",
    "SafetyConfigError",
    "SafetyEngine",
    "SafetyPolicyError",
    "UncheckableInput",
    "Verdict",
    "check_chat",
    "check_completion",
    "check_responses",
    "load_engine",
]
