"""Medical safety layer: bilingual input rails (crisis, emergencies, PHI, prompt injection) and
streaming output rails, configured by a validated YAML policy with named profiles.

    engine = SafetyEngine.from_policy_file(path_or_None)
    verdict = engine.check_input(messages, profile)      # or engine.check_prompt(prompt, profile)
    guard = engine.output_guard(verdict)                 # guard.feed(chunk) ... guard.finish()

Compiled regexes, plus small learned detectors for crisis, emergencies and injection (numpy, one shared
featurisation; weights shipped as package data, learned_model.json): no model download, no torch/vLLM import.
"""

from server.safety.engine import SafetyEngine, Verdict
from server.safety.output import OutputGuard
from server.safety.policy import CATEGORIES, SafetyPolicyError

__all__ = ["CATEGORIES", "OutputGuard", "SafetyEngine", "SafetyPolicyError", "Verdict"]
