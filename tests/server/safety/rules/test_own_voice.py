"""Whose words a crisis phrase is: the writer's own (never vetoed by the learned detector) or quoted,
reported or a topic (left to the detector's veto)."""

from __future__ import annotations

import pytest

from server.safety.normalize import match_view, normalize
from server.safety.rules import crisis
from server.safety.rules.situation import in_own_voice, quoted


def _view(text: str) -> str:
    return match_view(normalize(text))


def _span(view: str, phrase: str) -> tuple[int, int]:
    at = view.index(phrase)
    return at, at + len(phrase)


@pytest.mark.parametrize(
    ("text", "phrase", "own"),
    [
        ("I want to kill myself tonight", "kill myself", True),
        ("honestly, i want to die", "want to die", True),
        ("我不想活了，真的", "不想活", True),
        ("我现在真的很想死", "想死", True),
        ("She said 'I want to die' every time she lost a game", "want to die", False),
        ('孩子作文里写了一句"明天要考试，我真想死了算了"', "想死", False),
        ("他说「我想死」然后笑了", "想死", False),
        ("her father hanged himself in 1998", "hanged himself", False),
        ("the patient told me he wants to die", "wants to die", False),
        ("病人跟我说他想死的时候，我应该怎么回应", "想死", False),
        ("我在写小说，女主角的父亲在第二章跳楼身亡", "跳楼", False),
        ("I'm writing a screenplay where a detective finds a suicide note", "suicide note", False),
    ],
)
def test_whose_words(text: str, phrase: str, own: bool) -> None:
    view = _view(text)
    assert in_own_voice(view, _span(view, phrase)) is own


@pytest.mark.parametrize(
    ("text", "at", "inside"),
    [
        ("she says 'i'm dying' a lot", "dying", True),
        ("i'm dying to see it", "dying", False),  # an apostrophe opens nothing
        ('he wrote "goodbye" and left', "and left", False),  # closed before
        ("「走了」他说", "走了", True),
    ],
)
def test_quoted(text: str, at: str, inside: bool) -> None:
    view = _view(text)
    assert quoted(view, view.index(at)) is inside


@pytest.mark.parametrize(
    ("text", "outright"),
    [
        ("I'm suicidal and my chest hurts", True),
        ("心跳很快，我想自杀", True),
        ("My therapist asked me to write to my younger self. She used to say 'I want to die'.", False),
        ("心理学课上老师问自杀和非自杀性自伤有什么区别", False),
    ],
)
def test_said_outright_is_the_writers_own_words(text: str, outright: bool) -> None:
    assert crisis.said_outright(_view(text)) is outright
