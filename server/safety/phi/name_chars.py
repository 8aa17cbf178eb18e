"""How much a word looks like a person's name by its letters alone: evidence for the names no lexicon holds.

Faker's lists know "Jayden" but not "Folasade", "Sanjeev" or "Guptha"; a writer's names come from everywhere.
A name's letters still say a good deal ("-ade", "-eev", "Sanj-" are names' endings and beginnings more than
an ordinary word's), so the name model reads a word that no lexicon holds through
this scorer: a logistic regression over the word's character 2- to 4-grams (with its start and end marked),
trained by name_train.py on the lexicon's names against ordinary words (the learned corpora's vocabulary,
Faker's word lists, countries and cities). Its weights ship inside name_weights.json.

A word of the ordinary vocabulary is read as one ("w": "Dad", "Night", "TABLET", whatever their letters), so
that the model tells a known word from an unknown one. Any other word's score is read as "m" (a likely name),
"n" (a very likely one) or "0" (neither), at the lines that held-out ordinary words cross at READ_FPR. A
reading is a hint that the model weighs with the context, never a verdict.
"""

from __future__ import annotations

import re

ORDERS = (2, 3, 4)
# the share of held-out ordinary words read as "m" and as "n": the lines name_train.py sets the readings at
READ_FPR = {"m": 0.10, "n": 0.02}
# Roman numerals in capitals (ECG leads "II, III", stages, cranial nerves) are numbers, not names
_ROMAN = re.compile(r"(?=[MDCLXVI])M{0,3}(C[MD]|D?C{0,3})(X[CL]|L?X{0,3})(I[XV]|V?I{0,3})")


def grams(word: str) -> list[str]:
    """The word's character n-grams, lower-cased, with ^ and $ marking its ends."""
    w = f"^{word.lower()}$"
    return [w[i : i + n] for n in ORDERS for i in range(len(w) - n + 1)]


class CharScorer:
    """Log-odds that a word is a person's name, from its n-grams; and that score read as "n", "m" or "0"."""

    def __init__(self, weights: dict[str, float], lines: dict[str, float], known: frozenset[str]) -> None:
        self.weights = weights
        self.lines = lines  # reading -> the lowest score that earns it
        self.known = known  # ordinary words, lower case: a word the vocabulary knows is read as one

    def score(self, word: str) -> float:
        w = self.weights
        return w.get("bias", 0.0) + sum(w.get(g, 0.0) for g in grams(word))

    def read(self, word: str) -> str:
        core = word.rstrip(".").replace("’", "'")
        # too short to read, or not a word (an ID, a dose): letters say nothing about it
        if len(core) < 3 or not core.replace("-", "").replace("'", "").isalpha() or not self.weights:
            return "0"
        if core.lower() in self.known or _ROMAN.fullmatch(core):
            return "w"
        s = self.score(core)
        return "n" if s >= self.lines["n"] else "m" if s >= self.lines["m"] else "0"
