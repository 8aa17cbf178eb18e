"""The rule-based rails: crisis, emergency and injection, each a folder of reviewed rules (YAML) and the
little code that reads them in context. See ruleset.py for how tiers decide and loader.py for the format.

    hits = GateSet(all_patterns()).scan(view)       # one literal pass serves every rail (PHI included)
    crisis.detect(view, hits), emergency.detect(view, hits), injection.detect(view, hits)

Nothing is loaded or compiled at import: each category compiles its rules on first use.
"""

from __future__ import annotations

from server.safety.gate import GatedPattern
from server.safety.rules import crisis, emergency, injection

DETECTORS = {
    crisis.CATEGORY: crisis.detect,
    emergency.CATEGORY: emergency.detect,
    injection.CATEGORY: injection.detect,
}


def all_patterns() -> list[GatedPattern]:
    """Every pattern the three rails run (for the GateSet that scans their literals)."""
    return [*crisis.patterns(), *emergency.patterns(), *injection.patterns()]


__all__ = ["DETECTORS", "all_patterns", "crisis", "emergency", "injection"]
