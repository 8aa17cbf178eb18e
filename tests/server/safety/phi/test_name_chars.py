"""The name model's reading of words no lexicon holds (server/safety/phi/name_chars.py): names from outside
Faker's lists read as name-like by their letters, drugs and known words not, and the name model finding such
names in running prose with no cue."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from server.safety import lexicon
from server.safety.phi import name_model, name_train
from server.safety.phi.name_chars import CharScorer, grams
from tests.server.safety.phi.test_name_model import names_found


@pytest.fixture(scope="module")
def chars() -> CharScorer:
    scorer = name_model.load().chars
    assert scorer is not None, "the shipped name model carries its char scorer"
    return scorer


def _in_lexicon(word: str) -> bool:
    low = word.lower()
    return low in lexicon.given_names() or low in lexicon.surnames()


# Yoruba, Igbo, Hindi and Telugu names that Faker's lists lack (asserted below, so the case stays meaningful)
UNLISTED_NAMES = ["Folasade", "Sanjeev", "Oluwaseun", "Chukwuemeka", "Guptha", "Adaeze", "Okoro"]
# drugs no corpus word list holds: a drug's letters are not a name's
UNLISTED_DRUGS = ["Empagliflozin", "Semaglutide", "Escitalopram", "Tirzepatide", "Hydroxychloroquine"]


@pytest.mark.parametrize("word", UNLISTED_NAMES)
def test_names_no_lexicon_holds_read_as_names_by_their_letters(chars: CharScorer, word: str) -> None:
    assert not _in_lexicon(word) and word.lower() not in chars.known
    assert chars.read(word) in ("m", "n")


@pytest.mark.parametrize("word", UNLISTED_DRUGS)
def test_drugs_no_word_list_holds_do_not_read_as_names(chars: CharScorer, word: str) -> None:
    assert word.lower() not in chars.known
    assert chars.read(word) == "0"


@pytest.mark.parametrize("word", ["Dad", "Night", "Clinic", "TABLET", "Metformin", "III", "XIV"])
def test_a_word_the_vocabulary_knows_is_read_as_a_word(chars: CharScorer, word: str) -> None:
    assert chars.read(word) == "w"


@pytest.mark.parametrize("word", ["Al", "x", "A1C", "B12", "5mg"])
def test_short_tokens_and_tokens_with_digits_are_not_read(chars: CharScorer, word: str) -> None:
    assert chars.read(word) == "0"


def test_grams_mark_the_word_ends_and_ignore_case() -> None:
    assert grams("Ann") == grams("ANN") == ["^a", "an", "nn", "n$", "^an", "ann", "nn$", "^ann", "ann$"]


def test_the_weights_file_records_the_scorer_and_what_held_out_names_measured() -> None:
    raw = json.loads(resources.files("server.safety.phi").joinpath("name_weights.json").read_text("utf-8"))
    lines, report = raw["char_lines"], raw["trained"]["char_scorer"]
    assert lines["m"] < lines["n"] and len(raw["char_weights"]) > 5000
    assert raw["ordinary_words"] == sorted(set(raw["ordinary_words"])) and "clinic" in raw["ordinary_words"]
    # a fifth of the names, held back from the scorer's training, are read as names at these lines
    assert report["held_names_read"]["m"] >= 0.6 and report["held_names_read"]["n"] >= 0.3
    # the held-out documents with 30 % of the lexicon hidden lose little: the letters stand in for it
    trained = raw["trained"]
    assert trained["heldout_hidden_lexicon"]["recall"] >= trained["heldout"]["recall"] - 0.03


def test_the_hidden_lexicon_is_a_stable_share_of_the_names() -> None:
    given, sur, _ = name_train.hidden_lexicon(7)
    assert (given, sur) == name_train.hidden_lexicon(7)[:2]
    kept = len(given | sur) / len(lexicon.given_names() | lexicon.surnames())
    assert 0.65 <= kept <= 0.75


def test_ordinary_words_hold_no_name_of_the_lexicon() -> None:
    words = name_train.ordinary_words()
    assert len(words) > 5000 and words.isdisjoint(lexicon.given_names() | lexicon.surnames())
    assert {"clinic", "tuesday", "metformin"} <= words


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Could Folasade Okoro take ibuprofen with her lisinopril?", "Folasade Okoro"),
        ("Yesterday Sanjeev Guptha fell in the garden and hurt his wrist.", "Sanjeev Guptha"),
        ("My neighbour Chukwuemeka has chest pain.", "Chukwuemeka"),
    ],
)
def test_unlisted_names_in_running_prose_are_found(text: str, name: str) -> None:
    assert names_found(text) == [name]


@pytest.mark.parametrize(
    "text",
    [
        "Is Escitalopram safe with Semaglutide?",
        "Night shift this weekend, 36 hours. Any tips?",
        "The label says: TAKE ONE CAPSULE BY MOUTH TWICE DAILY.",
        "Exam q: ECG shows ST elevation in II, III and aVF. Which artery is occluded?",
    ],
)
def test_capitalised_drugs_and_words_in_running_prose_are_no_names(text: str) -> None:
    assert names_found(text) == []
