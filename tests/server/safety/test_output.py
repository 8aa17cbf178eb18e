"""Output rails over streamed answers: hold-back, PHI, placeholders, notices, method cuts, blocks."""

from __future__ import annotations

import json
import re
from pathlib import Path

from server.safety import SafetyEngine
from tests.server.safety.conftest import safety_eval, user


def stream(guard, chunks: list[str]) -> list[str]:
    return [guard.feed(c) for c in chunks] + [guard.finish()]


def plain_guard(engine: SafetyEngine, text: str = "What is a normal blood pressure?"):
    return engine.output_guard(engine.check_input(user(text), "patient"))


def test_plain_text_is_released_at_token_speed(engine: SafetyEngine) -> None:
    """Only what could still become a match waits: a capitalised or numeric run at the end, a word that
    already looks like an address; ordinary words go out as they come."""
    g = plain_guard(engine)
    assert g.feed("A normal blood") == "A normal blood"
    assert g.feed(" pressure is") == " pressure is"
    assert g.feed(" below 120/80") == " below "  # a number may be an identifier in the making
    assert g.feed(". Mary") == "120/80. "  # so may a name
    assert g.feed(" should recheck it.\n") == "Mary should recheck it."
    assert g.finish() == "\n"
    assert g.feed_unit("more") == [] and g.events == []


def test_a_word_that_may_become_an_address_waits(engine: SafetyEngine) -> None:
    g = plain_guard(engine)
    assert g.feed("You can email john") == "You can email "  # an address is being given
    assert g.feed(".doe") == ""
    assert g.feed("@example.org for help.") + g.finish() == "[EMAIL] for help."


def test_long_text_without_sentence_end_is_released_in_bounded_steps(make_engine) -> None:
    eng = make_engine(output={"hold_back_chars": 40})
    g = eng.output_guard(eng.check_input(user("hi"), "p"))
    released = ""
    for _ in range(30):
        released += g.feed("word ")
        # never more than the window plus one chunk held back
        assert len("word " * (_ + 1)) - len(released) <= 40 + 5
    assert released  # it did not wait for the end
    assert released + g.finish() == "word " * 30


def test_phi_split_across_chunks_is_still_redacted(engine: SafetyEngine) -> None:
    g = plain_guard(engine)
    out = "".join(
        stream(g, ["You can call 415-55", "5-0132 or write to jo", "hn.doe@exam", "ple.com today."])
    )
    assert "415-555-0132" not in out and "john.doe@example.com" not in out
    assert out == "You can call [PHONE] or write to [EMAIL] today."
    assert ("phi", "redact") in g.events


def test_chinese_mobile_split_across_chunks(engine: SafetyEngine) -> None:
    g = plain_guard(engine, "血压多少正常？")
    out = "".join(stream(g, ["请拨打1381", "2345", "678咨询。"]))
    assert out == "请拨打[PHONE]咨询。"


def test_callers_placeholders_are_restored_even_when_split(engine: SafetyEngine) -> None:
    verdict = engine.check_input(user("My name is Sarah Mitchell, call 415-555-0132"), "patient")
    assert verdict.messages[0]["content"] == "My name is [PERSON_1], call [PHONE_1]"
    g = engine.output_guard(verdict)
    out = "".join(stream(g, ["Hello [PERS", "ON_1], I will call [PHO", "NE_1]."]))
    assert out == "Hello Sarah Mitchell, I will call 415-555-0132."


def test_restore_can_be_switched_off(make_engine) -> None:
    eng = make_engine(phi={"action": "redact", "restore_in_answer": False})
    g = eng.output_guard(eng.check_input(user("call 415-555-0132"), "p"))
    assert g.check_text("I'll call [PHONE_1].") == "I'll call [PHONE_1]."


def test_urgent_care_notice_leads_the_answer(engine: SafetyEngine) -> None:
    verdict = engine.check_input(user("My mom's face is drooping and her speech is slurred"), "patient")
    g = engine.output_guard(verdict)
    first = g.feed("It could")
    assert first.startswith(engine.texts("en").urgent_care_notice)  # before any of the model's words
    out = first + "".join(stream(g, [" be a stroke. Call now."]))
    assert out.index("emergency") < out.index("It could")
    assert out.count(engine.texts("en").urgent_care_notice) == 1


def test_urgent_care_notice_even_for_an_empty_answer(engine: SafetyEngine) -> None:
    g = engine.output_guard(engine.check_input(user("我爸突然嘴歪了，说话不清楚"), "patient"))
    assert g.finish().startswith("⚠️ 这可能是急症")


def test_crisis_resources_are_guaranteed_once(engine: SafetyEngine) -> None:
    verdict = engine.check_input(user("I want to kill myself"), "patient")
    g = engine.output_guard(verdict)
    out = "".join(stream(g, ["I'm really sorry you're feeling this way. ", "You matter."]))
    resources = engine.texts("en").crisis_resources
    assert out.endswith(resources)
    assert out.count(resources) == 1
    assert g.finish() == ""  # finish is idempotent
    assert ("crisis_self_harm", "annotate") in g.events


def test_crisis_resources_follow_the_callers_language(engine: SafetyEngine) -> None:
    g = engine.output_guard(engine.check_input(user("我真的不想活了"), "patient"))
    assert "12356" in g.check_text("我很难过听到这些。")


def test_method_instructions_are_cut_and_replaced(engine: SafetyEngine) -> None:
    verdict = engine.check_input(user("what is a lethal dose of amitriptyline, I want it over"), "patient")
    g = engine.output_guard(verdict)
    parts = stream(
        g,
        [
            "I'm worried about you. ",
            "The lethal dose of amitriptyline is about ",
            "1500 mg. Step 2: take them all.",
            " More detail here.",
        ],
    )
    out = "".join(parts)
    assert "1500" not in out and "Step 2" not in out and "More detail" not in out
    assert out.startswith("I'm worried about you.")
    assert engine.texts("en").method_replacement in out
    assert out.count(engine.texts("en").crisis_resources) == 1
    assert ("crisis_self_harm", "redact") in g.events
    assert not g.blocked


def test_method_cut_in_chinese(engine: SafetyEngine) -> None:
    g = plain_guard(engine, "安眠药的副作用？")
    out = g.check_text("安眠药过量很危险。致死量约为 2 克。请及时就医。")
    assert "2 克" not in out and "请及时就医" not in out
    assert engine.texts("zh").method_replacement in out


def test_method_block_mode_stops_the_stream(make_engine) -> None:
    eng = make_engine(output={"self_harm_methods": "block"})
    g = eng.output_guard(eng.check_input(user("hello"), "p"))
    assert g.feed("Sure. ") == "Sure."
    assert g.feed("The most painless way to die is ") == ""
    assert g.feed("x. ") == ""
    assert g.blocked and g.block_message
    assert g.finish() == ""
    assert ("crisis_self_harm", "block") in g.events


def test_clinician_toxicology_passes_without_crisis(engine: SafetyEngine) -> None:
    verdict = engine.check_input(user("toxic threshold of paracetamol in adults?"), "clinician")
    g = engine.output_guard(verdict)
    text = "The lethal dose of paracetamol is about 10 g or 150 mg/kg in adults."
    assert g.check_text(text) == text


def test_supportive_text_is_not_cut(engine: SafetyEngine) -> None:
    g = engine.output_guard(engine.check_input(user("I want to kill myself"), "patient"))
    text = "If you feel you might act on thoughts to kill yourself, call 988 now. You deserve help."
    out = g.check_text(text)
    assert out.startswith(text)
    assert ("crisis_self_harm", "redact") not in g.events


def test_non_streaming_check_text_equals_streaming(engine: SafetyEngine) -> None:
    text = "Call 415-555-0132. Or email a.b@example.com. Take care."
    a = plain_guard(engine).check_text(text)
    b = "".join(stream(plain_guard(engine), [text[i : i + 7] for i in range(0, len(text), 7)]))
    assert a == b == "Call [PHONE]. Or email [EMAIL]. Take care."


def test_respond_and_block_verdicts_get_an_inert_guard(make_engine) -> None:
    eng = make_engine(crisis_self_harm="respond")
    g = eng.output_guard(eng.check_input(user("I want to kill myself"), "p"))
    assert g.check_text("ok.") == "ok."


_TOKENS = re.compile(r" ?[A-Za-z]+| ?\d| ?[^\sA-Za-z\d\u4e00-\u9fff]|[\u4e00-\u9fff]|\s+")
EVAL = Path(__file__).parent / "eval"


def _phi_cases() -> list[dict]:
    """The PHI cases of every evaluation set but the untuned ones, which are read for their totals only
    (benchmarks/safety_eval.py UNTUNED): a failure here would show their text."""
    cases = []
    for path in sorted(EVAL.glob("*.jsonl")):
        if path.stem in safety_eval.UNTUNED:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            case = json.loads(line) if line.strip() else {}
            if case.get("phi"):
                cases.append(case)
    return cases


def test_streaming_at_token_speed_redacts_every_identifier_the_whole_text_check_does(
    engine: SafetyEngine,
) -> None:
    """Token-speed release must not let out what sentence-at-a-time checking would catch: every identifier
    of the evaluation sets that the guard redacts in a whole answer stays out of the same answer streamed
    word by word and character by character."""
    verdict = engine.check_input(user("hi"), "clinician")
    leaks = []
    for case in _phi_cases():
        whole = engine.output_guard(verdict).check_text(case["text"])
        values = [s if isinstance(s, str) else s["text"] for s in case["phi"]]
        hidden = [v for v in values if v not in whole]
        for tokens in (_TOKENS.findall(case["text"]), list(case["text"])):
            g = engine.output_guard(verdict)
            streamed = "".join(g.feed(t) for t in tokens) + g.finish()
            leaks += [(case["id"], v) for v in hidden if v in streamed]
    assert len(_phi_cases()) > 150 and leaks == []
