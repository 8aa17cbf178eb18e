"""Person names as a recognition problem: candidate spans from evidence, scored by a trained linear model.

The rules in names.py catch a name after a cue they spell out ("my name is", 患者, "Patient: HOLLOWAY,
Graham"). This model reads the same evidence as features and learns how much each is worth, so a name is
also found where no single rule fires: "CHAN Tai-man", "Nur Aisyah binti Hassan", "WOOD, Phillip" on a
label, "destiny mcgee" after "my name's", 欧阳娜娜 in a form, a signature under a letter.

Candidates (only these are scored, which bounds the cost per message):
- Latin script: every run of up to six name-shaped tokens (capitalised, ALL-CAPS, initials, hyphenated,
  joined by spaces, one comma, or a patronymic connector: bin, binti, a/l, s/o, van, de...), and every
  sub-span of up to four tokens of it that holds a lexicon or name-like word or follows a cue; lower-case
  words only right after a cue ("my name's", "it's", "this is", a relative), and after the weaker cues only
  when the first is a lexicon name and no common English word ("I'm scared" is no name);
- Chinese: a surname (compound ones first) and one or two more characters, where a left cue ends (患者,
  姓名：, 我妈, 联系人...), where a right cue starts (先生, 女士, 的家属, 阿姨..., punctuation, the end), or
  alone on a line (a signature, a form cell).
Features (strings; the weight table ships as JSON): token shapes, lexicon membership per position (Faker's
given names and surnames, romanised Chinese syllables, Chinese surname rank and given-name characters; a
word no lexicon holds is read as an ordinary word or by its letters, name_chars.py, so that a name Faker does
not list still counts as evidence),
common English words by identity, one and two words or one to three characters of left and right context,
cue classes, sentence start. score = sum of weights; overlapping candidates: the best one; a span is a name
when its score clears the threshold. Trained by name_train.py on synthetic documents (name_templates.py).

Cost: cues are found by one Aho-Corasick pass per script (the gate module's crate), the context of a token
is read once however many candidates share it, and a token's shape and lexicon reading are memoised; the
weights load at first use (load(), cached), never at import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources

from server.safety.phi import zh_words
from server.safety.phi.name_chars import CharScorer
from server.safety.phi.name_cues import (
    _APOS,
    _BED_NUMBER,
    _CJK,
    _CJK_RUN,
    _CLAUSE_VERBS,
    _COMPOUND,
    _CUE_CLASS,
    _ENDEARMENTS,
    _KIN_WORDS,
    _LATIN_RUN,
    _LATIN_THEN_PAREN,
    _LOWER_WORDS,
    _NO_EVIDENCE,
    _PLACE_WORDS,
    _STOP,
    _TOKEN,
    _ZH_CALLED,
    _ZH_CUES,
    _ZH_KIN,
    _ZH_LEFT_CLASS,
    _ZH_LEFT_SET,
    _ZH_LINE,
    _ZH_PARTICLES,
    _ZH_RIGHT_CLASS,
    _ZH_SEPARATORS,
    _ZH_WEAK_LEFT,
    FAMILIAR_WORD_FREQ,
    _automata,
    _clause_names,
    _cued,
    _evidence,
    _lex,
    _shape,
    _tables,
    _word_after,
    _word_before,
    _zh_tail,
    column_header,
    names_inside_clauses,
    nick_features,
    reduplicated_names,
    surname_kin_starts,
    zh_cue_after,
    zh_cue_before,
    zh_features,
)
from server.safety.phi.names import FAMILIAR_NAME
from server.safety.verdict import Span

WEIGHTS_FILE = "name_weights.json"
FORMAT = "antangelmed-phi-name-model"
_ZH_BIASES = ("zbias", "kbias")  # the first feature of a Chinese candidate (a surname's, a familiar name's)
_READ_SHAPES = frozenset(("C", "U", "H", "HU", "M", "L"))  # words the char scorer reads
MAX_TOKENS = 4  # a candidate name has at most this many tokens ("Maria del Carmen Ruiz" is four)


class NameModel:
    def __init__(
        self,
        weights: dict[str, float],
        threshold: float,
        common: frozenset[str],
        threshold_zh: float | None = None,
        chars: CharScorer | None = None,
        lexicon: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None,
    ) -> None:
        self.weights = weights
        # a word no lexicon holds is read by its letters ("m", "n": name-like); training hides part of the
        # lexicon (`lexicon`: given names, surnames, syllables) so that the weights learn what such a reading
        # is worth in context, as it will be for the names of the world that Faker does not list
        self.chars = chars
        self.lexicon = lexicon
        # the two scripts' candidates come from different generators, whose scores sit on their own scales
        self.threshold = threshold
        self.threshold_zh = threshold if threshold_zh is None else threshold_zh
        self.common = common
        self._tokens: dict[str, tuple[str, str]] = {}  # token -> (shape, lexicon reading), memoised
        self._found: dict[tuple[str, float, float], list[Span]] = {}  # recent texts -> their names

    def score(self, feats: list[str]) -> float:
        w = self.weights
        return sum(w.get(f, 0.0) for f in feats)

    def find(self, text: str) -> list[Span]:
        """Non-overlapping name spans: the best-scoring candidates that clear the threshold. Remembered for
        the last few hundred texts: a conversation's earlier turns come back with every request."""
        key = (text, self.threshold, self.threshold_zh)
        found = self._found.get(key)
        if found is None:
            found = self._find(text)
            if len(text) <= 20_000:
                if len(self._found) >= 256:
                    self._found.pop(next(iter(self._found)))  # the oldest
                self._found[key] = found
        return list(found)

    def forget(self) -> None:
        """Drop the remembered texts (for timing the work itself)."""
        self._found.clear()

    def _find(self, text: str) -> list[Span]:
        # only the candidates above their line are sorted and taken (the input rails' hot path); ranked()
        # takes every candidate for the trainer, and cut at a line gives the same names
        scored = [
            (s, start, end) for start, end, feats in self.candidates(text)
            if (s := self.score(feats)) > self.line(feats[0] in _ZH_BIASES)
        ]  # fmt: skip
        scored.sort(key=lambda x: (-x[0], x[1]))
        taken: list[Span] = []
        for _, start, end in scored:
            if all(end <= a or start >= b for a, b, _ in taken):
                taken.append((start, end, "PERSON"))
        return sorted(taken)

    def line(self, zh: bool) -> float:
        """The threshold of a Chinese (surname's, familiar name's) or a Latin candidate."""
        return self.threshold_zh if zh else self.threshold

    def ranked(self, text: str) -> list[tuple[float, int, int, bool]]:
        """(score, start, end, Chinese?) of the candidates that no better-scoring candidate overlaps, best
        first. find() keeps those above their script's line: the candidates above a line are a prefix of
        this order, so cutting it there takes what taking the best of them would (and the trainer can read
        every line's names from one pass)."""
        scored = sorted(
            (
                (self.score(feats), start, end, feats[0] in _ZH_BIASES)
                for start, end, feats in self.candidates(text)
            ),
            key=lambda x: (-x[0], x[1]),
        )
        taken: list[tuple[float, int, int, bool]] = []
        for cand in scored:
            if all(cand[2] <= t[1] or cand[1] >= t[2] for t in taken):
                taken.append(cand)
        return taken

    def candidates(self, text: str) -> Iterator[tuple[int, int, list[str]]]:
        """(start, end, features) of every candidate span of `text` (find_phi's text: Traditional read as
        Simplified, case kept)."""
        if not text.isascii() and _CJK.search(text):
            yield from self._zh_candidates(text)
        yield from self._latin_candidates(text)

    # -- Latin script ---------------------------------------------------------------------------------------

    def _token(self, tok: str) -> tuple[str, str]:
        got = self._tokens.get(tok)
        if got is None:
            if len(self._tokens) > 50_000:  # user text has no bound on its words; the memo has
                self._tokens.clear()
            given, sur, syl = self.lexicon or _tables()[:3]
            shape = "S" if tok.lower().rstrip(".").translate(_APOS) in _STOP else _shape(tok)
            lex = "k" if shape == "K" else _lex(tok, given, sur, syl)
            if lex == "0" and self.chars is not None and shape in _READ_SHAPES:
                lex = self.chars.read(tok)
            got = self._tokens[tok] = (shape, lex)
        return got

    def _segments(self, text: str, base: int, run: str) -> Iterator[tuple[list[tuple[int, int, str]], list]]:
        """The tokens of a run, and their (shape, lexicon reading), split where a function word stands."""
        tokens: list[tuple[int, int, str]] = []
        info: list[tuple[str, str]] = []
        for t in _TOKEN.finditer(run):
            got = self._token(t.group())
            if got[0] == "S":
                if tokens:
                    yield tokens, info
                tokens, info = [], []
                continue
            tokens.append((base + t.start(), base + t.end(), t.group()))
            info.append(got)
        if tokens:
            yield tokens, info

    def _latin_candidates(self, text: str) -> Iterator[tuple[int, int, list[str]]]:
        memo = self._tokens
        rows: dict[tuple[str, int], str] = {}  # this text's table rows: the header above each (column_header)
        for m in _LATIN_RUN.finditer(text):
            run = m.group()
            if " " not in run and "," not in run:  # one token, as most runs are ("I", "What", "Tylenol")
                got = memo.get(run) or self._token(run)
                if got[0] not in "SKT" and (
                    _evidence(text, m.start(), m.end(), got) or _cued(text, m.start())
                ):
                    one = [(m.start(), m.end(), run)]
                    yield from self._latin_spans(text, one, [got], [True], False, rows)
                continue
            for tokens, info in self._segments(text, m.start(), run):
                capital = [
                    t[2] != "," and t[2][0].isupper() and i[0] not in "KT" for t, i in zip(tokens, info)
                ]
                useful = [c and _evidence(text, t[0], t[1], i) for c, i, t in zip(capital, info, tokens)]
                if useful != capital:
                    # after a cue, or a title or kinship word in the run, any capitalised word may be a name
                    # the lexicon does not know ("Granny Edwie", "Name: Xzylo Brandt")
                    cued = _cued(text, tokens[0][0])
                    for k, t in enumerate(tokens):
                        if cued and capital[k]:
                            useful[k] = True
                        cued = cued or _CUE_CLASS.get(t[2].lower().rstrip("."), "") in ("kin", "title")
                if any(useful):
                    yield from self._latin_spans(text, tokens, info, useful, False, rows)
        low = text.lower()
        if len(low) != len(text):
            return  # a letter whose lower case is longer ("İ"): positions would not line up
        automaton, strong, _ = _automata()
        done: set[int] = set()
        for cue, start, end in automaton.find_matches_as_indexes(low, overlapping=True):
            if end in done or (start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")):
                continue
            m = _LOWER_WORDS.match(text, end)
            if m is None:
                continue
            done.add(end)
            tokens, info = next(self._segments(text, m.start(1), m.group(1)), ([], []))
            if not tokens or tokens[0][0] != m.start(1):
                continue  # a function word first ("it's the", "i'm on")
            if strong[cue]:
                useful = [i[1] not in _NO_EVIDENCE or t[2] not in self.common for t, i in zip(tokens, info)]
            else:
                useful = [
                    i[1] not in (*_NO_EVIDENCE, "k") and t[2] not in self.common for t, i in zip(tokens, info)
                ]
            if useful and useful[0]:
                yield from self._latin_spans(text, tokens, info, useful, True, rows)

    def _latin_spans(
        self,
        text: str,
        tokens: list[tuple[int, int, str]],
        info: list[tuple[str, str]],
        useful: list[bool],
        lower: bool,
        rows: dict[tuple[str, int], str],
    ) -> Iterator[tuple[int, int, list[str]]]:
        """Every sub-span of a run that starts and ends on a word, holds no title and at least one useful
        token, and has at most MAX_TOKENS words (three in lower case). `rows`: column_header's memo."""
        shapes = [i[0] for i in info]
        left: dict[int, tuple[str, str, str, str]] = {}
        heads: dict[int, str] = {}
        right: dict[int, tuple[str, list[str]]] = {}
        for i in range(len(tokens)):
            if shapes[i] in ",KT":
                continue
            words = 0
            for j in range(i + 1, len(tokens) + 1):
                if shapes[j - 1] == "T":
                    break
                if shapes[j - 1] != ",":
                    words += 1
                if words > MAX_TOKENS or (lower and words > 3):
                    break
                if shapes[j - 1] in ",K" or not any(useful[i:j]):
                    continue
                if lower and not (useful[i] and useful[j - 1]):
                    continue  # in lower case the words around a name are lower case too: "its romeo lol"
                start, end = tokens[i][0], tokens[j - 1][1]
                if end - tokens[j - 1][0] > 2 and text[end - 1] == ".":
                    end -= 1  # a full stop ends the sentence, not the name ("is Urvi Nair."); "J." keeps it
                if i not in left:
                    left[i] = self._left(text, start)
                    heads[i] = column_header(text, start, rows)
                if j not in right:
                    right[j] = self._right(text, end)
                n, first = words, info[i][1]
                feats = self._inside(tokens[i:j], info[i:j], lower)
                feats.append(f"first={first}")
                w1, cls, prev, two = left[i]
                feats.append(f"p={prev if not prev.isalnum() else 'w'}")
                if w1:
                    feats += [f"L1={w1}", f"L1c={cls}", f"L1c={cls}|{shapes[i]}|n={n}", f"L1c={cls}|p={prev}"]
                    if two:
                        feats.append(two)
                else:
                    feats.append("L1=^")
                if prev in "^.!?\n":
                    feats.append(f"sent|n={n}|{first}")
                q, after = right[j]
                feats += after
                if head := heads[i]:  # a table cell: its column's header is its label
                    feats += [
                        f"col={head}",
                        f"colc={_CUE_CLASS.get(head, 'cw' if head in self.common else 'o')}",
                    ]
                # the cue before with what follows: a relative's or a title's name runs on into the sentence
                # ("Granny Qin looks after"), a capitalised word after a full stop rarely is one
                feats.append(f"LQ={cls or '^'}|{q}|n={min(n, 3)}|{'low' if lower else shapes[i]}")
                yield start, end, feats

    def _inside(
        self, toks: list[tuple[int, int, str]], info: list[tuple[str, str]], lower: bool
    ) -> list[str]:
        """The features read from the candidate itself."""
        common = self.common
        words = [(t[2], i) for t, i in zip(toks, info) if t[2] != ","]
        lex = [i[1] for _, i in words]
        n = len(words)
        feats = ["bias", f"n={n}", "shape=" + " ".join(i[0] for i in info), "lex=" + " ".join(lex)]
        feats.append(f"last={lex[-1]}")
        feats.append(f"hits={sum(x[0] in 'gsr' for x in lex)}/{n}")  # lexicon words, not letters' readings
        if lower:
            feats.append("lowercue")
        for k, (w, i) in enumerate(words):
            low = w.lower().rstrip(".")
            if low in common:
                feats.append(f"cw={low}")
                feats.append(f"cw_shape={i[0]}")
                feats.append(f"cw_at={'first' if k == 0 else 'last' if k == n - 1 else 'mid'}|n={n}")
            if low in _PLACE_WORDS:
                feats.append("place")
            # "speaking", "tomorrow": word endings names rarely have
            if lex[k] in _NO_EVIDENCE and len(low) > 3:
                feats.append(f"suf={low[-3:]}")
        return feats

    def _left(self, text: str, start: int) -> tuple[str, str, str, str]:
        """(the word before, its cue class, the character before, the two words before as a feature)."""
        lo = max(0, start - 40)
        k = start
        while k > lo and text[k - 1] in " \t":
            k -= 1
        prev = text[k - 1] if k > lo else "^"
        if prev not in ":：" and ("\t" in text[k:start] or start - k >= 2):
            prev = "\t"  # a field separator
        at, w1, _ = _word_before(text, start, lo)
        if not w1:
            return "", "", prev, ""
        if _CJK.match(w1[-1]):  # a romanised name in Chinese text: the Chinese cue before it
            cue, cls = zh_cue_before(w1)
            return (cue, cls, prev, "") if cue else ("zh", "other", prev, "")
        cls = _CUE_CLASS.get(w1, "cw" if w1 in self.common else "other")
        w2 = _word_before(text, at, lo)[1]
        return w1, cls, prev, f"L2={w2} {w1}" if w2 else ""

    def _right(self, text: str, end: int) -> tuple[str, list[str]]:
        k = end
        while k < len(text) and k - end < 30 and text[k] in " \t":
            k += 1
        nxt = text[k] if k < len(text) and k - end < 30 else "$"
        # two spaces or a tab end a form's field as a newline does ("Full name: Grant Jones    Phone:")
        q = "\t" if "\t" in text[end:k] or k - end >= 2 else nxt if not nxt.isalnum() else "w"
        if q == "w" and _CJK.match(nxt):
            q = "z"  # Chinese goes on after a romanised name ("Chinedu说"): no English word follows
        feats = [f"q={q}"]
        r1 = _word_after(text, end) if q not in ".!?" else ""  # the next sentence's first word says nothing
        # nor does a capitalised everyday word, which starts a sentence too ("my cousin Ann Lee The rash...")
        if r1 in self.common and text[end : end + 6].lstrip(" \t,;:-")[:1].isupper():
            r1 = ""
        if r1:
            if _CJK.match(r1):  # Chinese after a romanised name: the cue it starts with ("López先生")
                r1, cls = zh_cue_after(r1)
                r1, cls = (r1, cls) if r1 else ("zh", "other")
            else:
                cls = _CUE_CLASS.get(r1, "cw" if r1 in self.common else "other")
            feats += [f"R1={r1}", f"R1c={cls}|q={q}"]
        if text.startswith(("'s", "’s"), end):
            feats.append("R=poss")
        return q, feats

    # -- Chinese --------------------------------------------------------------------------------------------

    def _zh_candidates(self, text: str) -> Iterator[tuple[int, int, list[str]]]:
        _, _, _, ranks, given_chars = _tables()
        n = len(text)
        seen: set[tuple[int, int]] = set()

        def surname_at(i: int) -> int:
            # 阿 is a surname too rarely to read "阿强" or "阿维菌素" as one: familiar names are read below
            return 2 if text[i : i + 2] in _COMPOUND else 1 if text[i] in ranks and text[i] != "阿" else 0

        def plausible(i: int, end: int, sur: int) -> bool:
            """Without a strong cue, the given name must be made of name characters ("普通" is no name)."""
            return all(c in given_chars for c in text[i + sur : end])

        def possible(i: int, end: int, sur: int) -> bool:
            """Whatever the cue, a given name holds no particle ("留了一") and is no title ("班主任"), and the
            whole is no cue word itself (孙子, 孙女: 孙 is a surname)."""
            given = text[i + sur : end]
            return (
                given not in _ZH_RIGHT_CLASS
                and text[i:end] not in _ZH_LEFT_SET
                and not any(c in _ZH_PARTICLES for c in given)
            )

        # left cues: where each ends (after separators and 叫), the cue it ends; right cues: where they start
        cue_at: dict[int, str] = {}
        right_at: list[tuple[int, str]] = []
        # where a given name alone may follow a relation ("表妹欣怡", "老公志伟")
        given_at: dict[int, str] = {}
        for k, start, end in _automata()[2].find_matches_as_indexes(text, overlapping=True):
            cue = _ZH_CUES[k]
            if cue in _ZH_RIGHT_CLASS:
                right_at.append((start, cue))
            if cue not in _ZH_LEFT_SET or (cue == "床" and not _BED_NUMBER.match(text[start - 1 : start])):
                continue
            p = end
            while p < n and text[p] in _ZH_SEPARATORS:
                p += 1
            if cue not in _ZH_WEAK_LEFT and cue not in _ZH_LEFT_CLASS:
                given_at.setdefault(p, cue)
            if p < n and text[p] in "叫名":  # "我妈叫李秀英", "名叫", "叫做"
                called = next((c for c in _ZH_CALLED if text.startswith(c, p)), "")
                p, cue = p + len(called), "叫" if called else cue
            if p < n and (text[p] in ranks or text[p : p + 2] in _COMPOUND):
                if cue == "叫":  # a bare 叫 ("……，叫黄晓燕，"; "叫车"): the weakest, any other cue wins
                    cue_at.setdefault(p, "called")
                elif p not in cue_at or cue_at[p] == "called" or len(cue) >= len(cue_at[p]):
                    cue_at[p] = cue
        # the same name in characters after a romanised one: "Li Jianhua（李建华）", "Tân Siù-lân（陳秀蘭）"
        for m in _LATIN_THEN_PAREN.finditer(text):
            cue_at.setdefault(m.end(), "paren")
        for i in sorted(cue_at):
            sur = surname_at(i)
            weak = cue_at[i] in _ZH_WEAK_LEFT
            for extra in (1, 2) if sur else ():
                end = i + sur + extra
                if (
                    end <= n
                    and _CJK_RUN.fullmatch(text, i, end)
                    and possible(i, end, sur)
                    and (not weak or plausible(i, end, sur))
                ):
                    seen.add((i, end))
                    yield i, end, zh_features(text, i, end, sur, "L", cue_at)
        # right cues: a title or relation after the name (any given name), punctuation or the end of the text
        # (a plausible one); the regex finds the first surname character of the last four before punctuation
        ends = [(end, True) for end, _ in right_at]
        ends += [(m.end(), False) for m in _zh_tail().finditer(text)]
        words = zh_words.everyday_words()
        for end, strong in ends:
            for size in (4, 3, 2):
                i = end - size
                if i < 0 or (i, end) in seen or not _CJK_RUN.fullmatch(text, i, end):
                    continue
                sur = surname_at(i)
                if (
                    sur
                    and 1 <= size - sur <= 2
                    and possible(i, end, sur)
                    # before punctuation alone, a given name that is an everyday word is that word
                    # (一大段英文。, 品管中心：)
                    and (
                        strong
                        or (plausible(i, end, sur) and words.get(text[i + sur : end], 0) < FAMILIAR_WORD_FREQ)
                    )
                ):
                    seen.add((i, end))
                    yield i, end, zh_features(text, i, end, sur, "R", cue_at)
        # a given name alone after a relation or a label (表妹欣怡, 我老公志伟, 女儿佩珊): two name characters
        # that are no everyday word ("女儿今天", "老公说")
        for i, cue in given_at.items():
            end = i + 2
            if (
                end <= n  # a relation word one character from the end ("我老公志") names no one
                and (i, end) not in seen
                and _CJK_RUN.fullmatch(text, i, end)
                and plausible(i, end, 0)
                and possible(i, end, 0)
                and words.get(text[i:end], 0) < FAMILIAR_WORD_FREQ
            ):
                seen.add((i, end))
                yield i, end, zh_features(text, i, end, 0, "G", {i: cue})
        # familiar names (老王, 小李, 阿强): what follows tells them from words ("小时", "老师", "阿司匹林")
        for m in FAMILIAR_NAME.finditer(text):
            i, end = m.span()
            if text[i] != "阿" and text[i + 1 : i + 3] in _COMPOUND:  # 老诸葛, 小欧阳
                end = i + 3
            ch = text[i + 1 : end]
            if (
                (i, end) not in seen
                and (ch in ranks or (text[i] == "阿" and ch in given_chars and ch not in _ZH_KIN))
                and text[i:end] not in _ZH_LEFT_SET
                # not a frequent word (小时, 老师), nor the start of one (小金库, 老江湖)
                and (freq := words.get(text[i:end], 0)) < FAMILIAR_WORD_FREQ
                and text[i : end + 1] not in words
            ):
                seen.add((i, end))
                yield i, end, nick_features(text, i, end, ranks.get(ch, 999), freq)
        yield from reduplicated_names(text, seen, words)
        for m in _ZH_LINE.finditer(text):
            i, end = m.span(1)
            sur = surname_at(i)
            if sur and 1 <= end - i - sur <= 2 and (i, end) not in seen and plausible(i, end, sur):
                seen.add((i, end))
                yield i, end, zh_features(text, i, end, sur, "line", cue_at)
        # a name opening a clause with no cue ("司马浩然这周在ICU", "春梅 你那个胃药"): a surname and one or
        # two name characters, or two name characters alone; and a surname before a short kin or title
        # word (王阿姨 is a right cue already; 李伯, 张哥, 黄太, 陈生)
        for m in _clause_names().finditer(text):
            i = m.end()
            sur = surname_at(i)
            # most clauses open with a word: test the next characters before anything dearer
            if i + sur >= n or text[i + sur] not in given_chars or (not sur and text[i] in _CLAUSE_VERBS):
                continue
            for a, end, s in ((i, i + sur + 1, sur), (i, i + sur + 2, sur)) if sur else ((i, i + 2, 0),):
                if (
                    end <= n
                    and text[end : end + 1] != "氏"  # an eponym: 罗伊氏乳杆菌, 帕金森氏病
                    and (a, end) not in seen
                    and plausible(a, end, s)
                    and _CJK_RUN.fullmatch(text, a, end)
                    and possible(a, end, s)
                    and words.get(text[a:end], 0) < FAMILIAR_WORD_FREQ
                    and text[a:end] not in _ENDEARMENTS
                ):
                    seen.add((a, end))
                    yield a, end, zh_features(text, a, end, s, "S" if s else "SG", cue_at)
        yield from names_inside_clauses(text, seen, possible, words)
        # a surname alone before a kinship word or a title (王阿姨, 钟师傅, 巫先生): not where the character
        # before may be a name's own (王桂兰阿姨 is a full name: the right cue reads it)
        kin_at = [(at, True) for at in surname_kin_starts(text)]
        kin_at += [(at - 1, False) for at, cue in right_at if at and _ZH_RIGHT_CLASS[cue] in ("kin", "title")]
        for i, short in kin_at:
            if (
                (i, i + 1) not in seen
                and surname_at(i) == 1
                and (short or i == 0 or text[i - 1] not in given_chars)
                # nor the end of a word (旁边大哥, 宿管阿姨) or the start of one (温哥华)
                and words.get(text[i - 1 : i + 1], 0) < FAMILIAR_WORD_FREQ
                and text[i : i + 3] not in words
                and words.get(text[i : i + 2], 0) < FAMILIAR_WORD_FREQ
                # nor a kin character that starts an everyday word with what follows (但生活, 去公司)
                and (
                    not short
                    or text[i + 1 : i + 3] in _KIN_WORDS
                    or words.get(text[i + 1 : i + 3], 0) < FAMILIAR_WORD_FREQ
                )
            ):
                seen.add((i, i + 1))
                yield i, i + 1, zh_features(text, i, i + 1, 1, "K", cue_at)


def candidates(
    text: str,
    common: frozenset[str],
    chars: CharScorer | None = None,
    lexicon: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None,
) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, features) of every candidate span of `text` (for training: no weights needed)."""
    return NameModel({}, 0.0, common, chars=chars, lexicon=lexicon).candidates(text)


@cache
def load() -> NameModel:
    """The shipped model (package data next to this module), read at first use."""
    raw = json.loads(resources.files(__package__).joinpath(WEIGHTS_FILE).read_text(encoding="utf-8"))
    if raw.get("format") != FORMAT:
        raise RuntimeError(f"{WEIGHTS_FILE}: not a {FORMAT} file")
    chars = None
    if "char_weights" in raw:
        chars = CharScorer(raw["char_weights"], raw["char_lines"], frozenset(raw["ordinary_words"]))
    return NameModel(
        raw["weights"],
        float(raw["threshold"]),
        frozenset(raw["common_words"]),
        float(raw["threshold_zh"]),
        chars=chars,
    )
