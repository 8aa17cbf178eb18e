"""PHI recognisers: HIPAA Safe Harbor identifiers and their Chinese, Hong Kong and Taiwan counterparts.

Each recogniser yields (start, end, entity) spans on the normalised text. Numbers that only mean something
in context (record, plan, account, licence, device numbers) need their context word; free-standing formats
(e-mail, URL, IP, phone, SSN, resident ID with its checksum, full dates) do not. Grouped by identifier
family: contact.py, identifiers.py, regional.py, dates.py, spoken.py (identifiers read out or typed past
filters), addresses.py, records.py (the fields of HL7 segments, JSON, tables and forms), names.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from server.safety.gate import GatedPattern, GateSet, Hits
from server.safety.normalize import match_view, simplified
from server.safety.phi import (
    addresses,
    contact,
    dates,
    identifiers,
    name_vetoes,
    names,
    numbered,
    records,
    regional,
    romanised,
    spoken,
)
from server.safety.phi.common import Finder
from server.safety.verdict import Span

ENTITIES = (
    "PERSON", "ADDRESS", "DATE", "AGE", "PHONE", "FAX", "EMAIL", "SSN", "CN_ID", "MRN", "HEALTH_PLAN",
    "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "URL", "IP", "NATIONAL_ID", "HANDLE", "OTHER_ID",
)  # fmt: skip
# NATIONAL_ID: identity cards other than the mainland's (Hong Kong HKID, Taiwan 身分證); HANDLE: messaging ids
# (WeChat, QQ, LINE) that reach a person as surely as a phone number; OTHER_ID: HIPAA's "any other unique
# identifying number", a value under a number word whose noun no recogniser knows (numbered.py)

# In this order: where two recognisers find the same span, the first one names its entity.
_FINDERS: tuple[Finder, ...] = (
    contact.email,
    contact.url,
    contact.ipv4,
    contact.ipv6,
    contact.mac,
    identifiers.ssns,
    identifiers.cn_ids,
    regional.regional_named_ids,
    contact.phones,
    dates.dates,
    spoken.spoken,
    identifiers.context_ids,
    regional.regional_ids,
    contact.handles,
    identifiers.cards,
    addresses.addresses,
    addresses.postcodes,
    regional.pan_numbers,
    names.names,
    regional.named_numbers,  # after the named and shaped ids, which name their entity better
    identifiers.national_ids,  # "Aetna ID W123456789" stays a plan number
    numbered.numbered,  # last: every recogniser that knows the noun or the shape names it better
)
# read on the input rails only (see find_phi): records, a romanised name after a Chinese relation word or a
# pinyin cue, relatives' names known by what follows them, and tokens with an identifier's own shape (an
# answer that explains a code format must not lose its example)
_INPUT_FINDERS: tuple[Finder, ...] = (
    records.records,
    romanised.romanised_after_relation,
    romanised.pinyin_after_cue,
    names.relatives_named,
    numbered.shaped,
)
_TRAILING = ".,;:!?)]}'\"，。；：！？）"
# the trained person-name model (name_model.py) adds the names no rule spells out: on for the input rails
# (find_phi called with the engine's view), off for the output guard (called without one). The model also
# reads what follows a name ("翁淑慧女士", "Granny Qin looks after"), which a streamed answer has not sent
# yet when the guard must release the name: there it would hide in a whole answer what it lets out token
# by token. False: the rules alone everywhere.
USE_NAME_MODEL = True


@cache
def patterns() -> tuple[GatedPattern, ...]:
    """Every gated pattern of the recognisers (for the engine's one gate scan)."""
    found: list[GatedPattern] = []
    for module in (
        contact,
        identifiers,
        regional,
        dates,
        spoken,
        addresses,
        records,
        romanised,
        names,
        numbered,
    ):
        for value in vars(module).values():
            found.extend(_gated(value))
    return tuple(dict.fromkeys(found))


def _gated(value: object) -> Iterator[GatedPattern]:
    if isinstance(value, GatedPattern):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _gated(item)


@cache
def _phi_gates() -> tuple[GateSet, frozenset[GatedPattern]]:
    return GateSet(patterns()), frozenset(patterns())


def _simplified(text: str, view: str | None) -> str:
    """`text` with Traditional Chinese read as Simplified, case kept, one character per character: the
    rules are written in Simplified ("我妈妈", "电话", "号") and run on this. Only texts whose view differs
    from their lower case beyond ASCII can hold Traditional characters."""
    if text.isascii() or (view is not None and view == text.lower()):
        return text
    return simplified(text)


def find_phi(
    text: str,
    entities: frozenset[str] | None = None,
    view: str | None = None,
    hits: Hits | None = None,
    names_model: bool | None = None,
) -> list[Span]:
    """Non-overlapping PHI spans in `text` (already normalised), left to right.

    `view` is the lower-cased text of the same length (normalize.match_view) and `hits` its gate scan
    (a GateSet holding patterns()) when the caller already has them. `names_model`: whether the trained
    name model adds its names (None: when `view` is given, i.e. on the input rails; see USE_NAME_MODEL).
    """
    gates, own = _phi_gates()
    if hits is None:
        hits = gates.scan(match_view(text) if view is None else view)
    # every recogniser is gated: none of their gate literals, no PHI (a shared scan also reports the other
    # rails' literals, which must not send ordinary text through every recogniser); the name model reads
    # every text
    gated = bool(hits) and not own.isdisjoint(hits)
    if names_model is None:
        names_model = USE_NAME_MODEL and view is not None
    model = names_model and (entities is None or "PERSON" in entities)
    if not gated and not model:
        return []
    text = _simplified(text, view)
    spans: list[Span] = []
    # the rules first: where a rule and the model find the same span, the rule names it. Records (HL7
    # segments, JSON, table rows, form lines) are read, like the model's names, on the input rails only: a
    # record's value is known when its row or line is complete, which a streamed answer has not sent yet
    # when the guard must release the value's start.
    rules = (*_FINDERS, *_INPUT_FINDERS) if view is not None else _FINDERS
    for finder in (*(rules if gated else ()), *((name_vetoes.model_names,) if model else ())):
        for start, end, entity in finder(text, hits):
            while end > start and text[end - 1] in _TRAILING:
                if text[end - 1] in ")）" and ("(" in text[start : end - 1] or "（" in text[start : end - 1]):
                    break
                end -= 1
            while end > start and text[end - 1] == " ":
                end -= 1
            if end > start and (entities is None or entity in entities):
                spans.append((start, end, entity))
    if view is not None:  # a name's other form in brackets after it (input rails, like the records)
        spans = romanised.bracketed_aliases(text, spans)
    if not spans:
        return spans
    # Longest span wins an overlap: "John Alvarez, MRN 00482913" style contexts can be matched twice.
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    merged: list[Span] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            last = merged[-1]
            if span[1] > last[1]:
                merged[-1] = (
                    last[0],
                    span[1],
                    last[2] if last[1] - last[0] >= span[1] - span[0] else span[2],
                )
            continue
        merged.append(span)
    return merged
