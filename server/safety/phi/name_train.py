"""Train the person-name model (name_model.py) on synthetic documents and write its weights.

    python -m server.safety.phi.name_train [--docs 6000] [--seed 7] [--out PATH] [--heldout-out PATH]

Deterministic for a seed, a Faker version and the learned detectors' corpora (learned/data/*.jsonl): the
documents come from name_templates.py, the benign negatives from Faker's English and Chinese lorem sentences
and those corpora (texts with no name in them by the rules' reading). Writes (by default; --out and
--heldout-out write elsewhere):
- server/safety/phi/name_weights.json (package data: the weights, the threshold, the common English words,
  and what the training measured);
- server/safety/phi/data/names_heldout.jsonl: the held-out documents (templates and locales the trainer never
  saw), scored by benchmarks/phi_names.py.
Words no lexicon holds are read by the char scorer (name_chars.py), fitted here first on the lexicon's names
against ordinary_words(); the name model then trains with HIDDEN_SHARE of the lexicon hidden (read by its
letters alone), and the weights file carries the scorer, its lines and the ordinary words.
The model is a logistic regression over the candidates' features, fitted by full-batch gradient descent
(Adam) with L2 in numpy; a candidate is positive when it is exactly a gold span (a span one token short or
long is a negative, which teaches boundaries). Each script's threshold is read off the writers' messages,
each ranked by a model fitted without its writer: the highest line within LINE_TOLERANCE of the best count
of names found less words taken for names, while at most one in 400 held-back benign texts gains a name on
the way down (choose_line).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path

import numpy as np
from faker import Faker

from server.safety import lexicon
from server.safety.normalize import simplified
from server.safety.phi import name_cues, name_model
from server.safety.phi.name_chars import READ_FPR, CharScorer, grams
from server.safety.phi.name_templates import BREEDS_EN, DRUGS_EN, FILL_EN, FILL_ZH, ZWORD_ZH, Doc, documents

HERE = Path(__file__).resolve().parent
LEARNED_DATA = HERE.parent / "learned" / "data"
HELDOUT_FILE = HERE / "data" / "names_heldout.jsonl"
# messages independent writers wrote with every private person's name marked (see data/name_writers/README.md)
WRITERS_DIR = HERE / "data" / "name_writers"
_WORD = re.compile(r"[a-z][a-z']+")
# the share of benign texts the model may find a name in (the PHI rail's benign false-positive goal is 3% for
# every rail together; one in 400 keeps the model's part of it small)
BENIGN_BUDGET = 0.0025
# a line within this share of the best line's net count of names (found less wrongly taken) is as good
LINE_TOLERANCE = 0.01
# the share of the lexicon hidden while the name model trains: its names are then read by their letters
# alone, as a name Faker does not list will be
HIDDEN_SHARE = 0.3
# how many times each writer's message counts in training: a few hundred real messages beside thousands of
# template documents
WRITER_REPEAT = 4


def benign_texts(seed: int) -> list[Doc]:
    """Texts with no person name: lorem sentences (English and Chinese) and the learned corpora's texts that
    the rules (not the model: training must not read its own output) find no name in."""
    from server.safety.phi import find_phi

    rng = random.Random(seed)
    out: list[Doc] = []
    for locale, lang in (("en_US", "en"), ("zh_CN", "zh")):
        fk = Faker(locale)
        fk.seed_instance(seed)
        for _ in range(1500):
            sep = "" if lang == "zh" else " "
            text = sep.join(fk.sentence(nb_words=rng.randint(4, 14)) for _ in range(rng.randint(1, 4)))
            out.append(Doc(text, [], "lorem", locale, lang))
    for path in sorted(LEARNED_DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            case = json.loads(line) if line.strip() else {}
            text = case.get("text", "")
            if text and not any(s[2] == "PERSON" for s in find_phi(text, names_model=False)):
                out.append(Doc(text, [], "corpus", "", case.get("lang", "")))
    return out


_CLINICIAN_BEFORE = re.compile(
    r"\b(?:" + "|".join(w for w, c in name_cues._CUE_CLASS.items() if c == "clin") + r")\.?\s+$", re.I
)


def _clinician(text: str, start: int, end: int) -> bool:
    """A name a clinician title introduces ("Dr Mehta", "Nurse Fatima", 胡子豪医生, 方老师): never a name to
    find (name_templates' {DR}), whatever the writer marked."""
    if _CLINICIAN_BEFORE.search(text, max(0, start - 16), start):
        return True
    after = simplified(text[end : end + 2])
    return name_cues._ZH_RIGHT_CLASS.get(after) == "clin"


def _familiar(text: str, start: int, end: int) -> tuple[int, int]:
    """A surname marked alone after 老, 小 or 阿 is read with it (老陈, 小李): the model finds the pair."""
    if end - start == 1 and start > 0 and text[start - 1] in "老小阿":
        return start - 1, end
    return start, end


def writer_documents(folder: Path = WRITERS_DIR) -> dict[str, list[Doc]]:
    """Each writer's messages as documents with their marked names as gold spans, by writer (one group: a
    writer's phrasing must not sit on both sides of a held-out split). A clinician's name is not gold."""
    out: dict[str, list[Doc]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            text = case["text"]
            marked = [_familiar(text, n["start"], n["end"]) for n in case["names"]]
            spans = [(a, b) for a, b in marked if not _clinician(text, a, b)]
            doc = Doc(text, spans, "writer", case["writer"], case["lang"])
            out.setdefault(case["writer"], []).append(doc)
    return out


def _everyday_words(paths: list[Path]) -> set[str]:
    """The lower-case words of these corpora seen at least twice, Faker's lorem word list and the fillers."""
    from faker.providers.lorem.en_US import Provider

    counts: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            counts.update(_WORD.findall(json.loads(line).get("text", "")) if line.strip() else ())
    words = {w for w, n in counts.items() if n >= 2}
    words |= {w.lower() for w in Provider.word_list}
    words |= {w for s in FILL_EN for w in _WORD.findall(s.lower())}
    return words


def common_words() -> frozenset[str]:
    """Lower-case English words that are also capitalised at a sentence start or as a title: the everyday
    words of the two corpora files (learned/data/*.jsonl)."""
    return frozenset(_everyday_words(sorted(LEARNED_DATA.glob("*.jsonl"))))


def word_documents(seed: int) -> list[Doc]:
    """Every word that starts as a familiar name does (ZWORD_ZH: 小区, 老师, 阿司匹林) at a text's start,
    inside a sentence and in a list, with no name: the templates draw such words at random, and a word drawn
    too rarely leaves the model no weight against it."""
    rng = random.Random(seed)
    out = []
    for word in ZWORD_ZH:
        fill = rng.choice(FILL_ZH)
        for text in (f"{word}{fill}", f"{fill}{word}以后，{rng.choice(FILL_ZH)}", f"请问{word}和{fill}"):
            out.append(Doc(text, [], "negative", "zh_CN", "zh"))
    # places and names that are everyday words, opening a sentence as its subject ("Sydney was hot", "Rose
    # early today"): the writers' messages open many sentences with a name, and these with no name
    for word in sorted(_place_names()) + sorted(_names_that_are_words()):
        fill = rng.choice(FILL_EN)
        lead = rng.choice(("was", "is", "early", "again", "in spring", "has been", "today"))
        out.append(Doc(f"{word.title()} {lead} {fill}", [], "negative", "en_US", "en"))
    # medicines where names stand: after "and", "with" or "on", before a verb ("Tylenol and Zyrtec; can she")
    for drug in DRUGS_EN:
        other, fill = rng.choice(DRUGS_EN), rng.choice(FILL_EN)
        for text in (f"She takes {other} and {drug}; {fill}", f"Is {drug} okay with {other}? {fill}",
                     f"{drug} can {fill}", f"He has been on {drug} since March, {fill}"):  # fmt: skip
            out.append(Doc(text, [], "negative", "en_US", "en"))
    for breed in BREEDS_EN:
        fill = rng.choice(FILL_EN)
        for text in (f"We had our old {breed} put down; {fill}", f"Our {breed} bit my son, {fill}"):
            out.append(Doc(text, [], "negative", "en_US", "en"))
    return out


def _faker_places(locales: tuple[str, ...], fields: tuple[str, ...]) -> Iterator[str]:
    """The place names Faker's address providers of these locales list under these fields."""
    for locale in locales:
        try:
            address = import_module(f"faker.providers.address.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for field in fields:
            yield from (n for n in getattr(address, field, None) or () if isinstance(n, str))


def _place_names() -> set[str]:
    """One-word place names: the cue table's and Faker's cities and countries."""
    places = {w for w in name_cues._PLACE_WORDS if len(w) > 3}
    found = _faker_places(("en_AU", "en_GB", "en_US", "en_CA"), ("countries", "cities", "city_names"))
    return places | {n.lower() for n in found if n.isalpha()}


def _names_that_are_words() -> set[str]:
    """Lexicon names that the corpora also write in lower case as everyday words ("rose", "will", "mark")."""
    names = lexicon.given_names() | lexicon.surnames()
    return {w for w in _everyday_words(sorted(LEARNED_DATA.rglob("*.jsonl"))) if w in names and len(w) > 2}


def ordinary_words() -> frozenset[str]:
    """Words that are not names, for the char scorer: the everyday words of every learned corpus (the writers'
    messages too) and Faker's country and city names (capitalised words that are no person), less any word a
    name lexicon holds ("grace", "will")."""
    words = _everyday_words(sorted(LEARNED_DATA.rglob("*.jsonl")))
    locales = ("en_US", "en_GB", "en_AU", "en_CA", "en_IN", "de_DE", "fr_FR", "es_ES", "it_IT")
    for name in _faker_places(locales, ("countries", "cities", "city_names", "states")):
        words.update(_WORD.findall(name.lower()))
    names = lexicon.given_names() | lexicon.surnames()
    return frozenset(w for w in words if len(w) >= 3 and w not in names)


def _held(word: str, share: float) -> bool:
    """A stable pseudo-random split of words (Python's hash() changes per process)."""
    key = int.from_bytes(word.encode("utf-8")[:8].ljust(8, b"_"), "little")
    return key * 2654435761 % 1000 < share * 1000


def train_chars(names: frozenset[str], words: frozenset[str], steps: int = 300) -> tuple[CharScorer, dict]:
    """The char scorer fitted on `names` against `words` (a fifth of each held back), its reading lines set
    where READ_FPR of the held-back words cross them; and what the held-back words and names measured."""
    held_words = {w for w in words if _held(w[::-1], 0.2)}
    held_names = {w for w in names if _held(w[::-1], 0.2)}
    train_n, train_w = sorted(names - held_names), sorted(words - held_words)
    feats = [["bias", *grams(w)] for w in (*train_n, *train_w)]
    labels = [1] * len(train_n) + [0] * len(train_w)
    weights = fit(feats, labels, 1e-4, steps)
    scorer = CharScorer(weights, {"m": 0.0, "n": 0.0}, words)
    word_scores = np.sort([scorer.score(w) for w in held_words])
    lines = {r: round(float(np.quantile(word_scores, 1 - fpr)), 3) for r, fpr in READ_FPR.items()}
    scorer.lines = lines
    name_scores = np.array([scorer.score(w) for w in held_names])
    report = {r: round(float((name_scores >= line).mean()), 4) for r, line in lines.items()}
    return scorer, {"lines": lines, "held_names_read": report, "names": len(names), "words": len(words)}


def hidden_lexicon(seed: int) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The lexicon with HIDDEN_SHARE of its names left out (the same ones from given names and surnames)."""
    rng = random.Random(seed)
    given, sur = lexicon.given_names(), lexicon.surnames()
    hidden = {w for w in sorted(given | sur) if rng.random() < HIDDEN_SHARE}
    return given - hidden, sur - hidden, lexicon.romanised_syllables()


def featurise(
    docs: list[Doc],
    common: frozenset[str],
    chars: CharScorer | None = None,
    lex: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None,
) -> tuple[list[list[str]], list[int], list[int], int]:
    """Feature lists, labels and document index of every candidate; and how many gold spans no candidate
    covers (the candidate generator's recall ceiling)."""
    feats, labels, owner = [], [], []
    missing = 0
    for k, doc in enumerate(docs):
        text = simplified(doc.text)
        gold = set(doc.spans)
        found = set()
        for start, end, f in name_model.candidates(text, common, chars, lex):
            feats.append(f)
            labels.append(int((start, end) in gold))
            owner.append(k)
            found.add((start, end))
        missing += len(gold - found)
    return feats, labels, owner, missing


def fit(feats: list[list[str]], labels: list[int], l2: float, steps: int) -> dict[str, float]:
    counts = Counter(f for fs in feats for f in set(fs))
    vocab = {f: i for i, f in enumerate(sorted(f for f, n in counts.items() if n >= 2))}
    rows = [[vocab[f] for f in fs if f in vocab] for fs in feats]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.array([i for r in rows for i in r], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    y = np.array(labels, dtype=np.float64)
    # positives are rarer than candidates: weigh them up so the boundary is not set by the negatives alone
    cw = np.where(y == 1, 0.5 / max(y.mean(), 1e-6), 0.5 / max(1 - y.mean(), 1e-6))
    w = np.zeros(len(vocab))
    m, v = np.zeros_like(w), np.zeros_like(w)
    lr, b1, b2 = 0.05, 0.9, 0.999
    for t in range(1, steps + 1):  # Adam, full batch
        z = np.add.reduceat(w[flat], offsets) * (lengths > 0)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        err = (p - y) * cw / len(y)
        g = np.bincount(flat, weights=np.repeat(err, lengths), minlength=len(w)) + l2 * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + 1e-8)
    return {f: round(float(w[i]), 4) for f, i in vocab.items() if abs(w[i]) >= 0.005}


def span_scores(model: name_model.NameModel, docs: list[Doc]) -> dict[str, float]:
    tp = fp = fn = 0
    for doc in docs:
        found = {(s, e) for s, e, _ in model.find(simplified(doc.text))}
        gold = set(doc.spans)
        tp += len(found & gold)
        fp += len(found - gold)
        fn += len(gold - found)
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,  # nothing found: nothing wrong
        "recall": round(tp / max(tp + fn, 1), 4),
        "false_positives": fp,
        "spans": tp + fn,
    }


Ranked = list[tuple[float, int, int, bool]]  # NameModel.ranked: (score, start, end, Chinese?), best first
LINES = [round(float(t), 2) for t in np.arange(6.0, -3.01, -0.25)]


def writer_counts(ranked: list[Ranked], docs: list[Doc], latin: float, zh: float) -> dict[str, float]:
    """span_scores of the writers' messages at the lines (latin, zh), read from their ranked candidates (the
    names find() gives at those lines: see NameModel.ranked)."""
    tp = fp = fn = 0
    for cands, doc in zip(ranked, docs, strict=True):
        found = {(a, b) for score, a, b, is_zh in cands if score > (zh if is_zh else latin)}
        gold = set(doc.spans)
        tp, fp, fn = tp + len(found & gold), fp + len(found - gold), fn + len(gold - found)
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "recall": round(tp / max(tp + fn, 1), 4),
        "false_positives": fp,
        "spans": tp + fn,
    }


def choose_line(
    ranked: list[Ranked], docs: list[Doc], benign: list[Ranked], zh: bool
) -> tuple[float, list[dict[str, float]]]:
    """One script's line ("zh": a Chinese candidate's; steps of 0.25 from 6 down to -3) and its curve, read
    off the writers' messages each ranked by a model fitted without its writer: what a new writer's names
    meet.

    A name found counts +1 and a word taken for a name -1 (a leaked name is the worse error, so this is the
    cautious reading of that trade); the line is the highest whose count is within LINE_TOLERANCE of the
    best line's, so that a retrain's few spans of noise do not move it. At most one in 400 `benign` texts
    (real questions with no name in them by the rules' reading) may gain a name of the script on the way
    down: the texts already named at the top line are not ones a line trades ("4床王阿姨" is a surname the
    model reads)."""
    # this script's candidates ranked above any line: (score, is it a writer's name?)
    mine = [
        (score, (a, b) in set(doc.spans))
        for cands, doc in zip(ranked, docs, strict=True)
        for score, a, b, is_zh in cands
        if is_zh == zh
    ]
    curve, at_top = [], None
    for t in LINES:
        flagged = {i for i, cands in enumerate(benign) if any(c[3] == zh and c[0] > t for c in cands)}
        at_top = flagged if at_top is None else at_top
        if len(flagged - at_top) > BENIGN_BUDGET * len(benign):
            break
        names = sum(1 for score, gold in mine if score > t and gold)
        words = sum(1 for score, gold in mine if score > t and not gold)
        s = writer_counts(ranked, docs, *((6.0, t) if zh else (t, 6.0)))
        curve.append({"threshold": t, **s, "net": names - words, "benign_flagged": len(flagged)})
    best = max(row["net"] for row in curve)
    line = next(row for row in curve if row["net"] >= best - LINE_TOLERANCE * abs(best))
    return line["threshold"], curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--l2", type=float, default=1e-5)
    parser.add_argument(
        "--out", type=Path, default=HERE / name_model.WEIGHTS_FILE, help="weights file to write"
    )
    parser.add_argument("--heldout-out", type=Path, default=HELDOUT_FILE, help="held-out documents to write")
    parser.add_argument(
        "--writers", type=Path, default=WRITERS_DIR, help="folder of writers' marked messages"
    )
    args = parser.parse_args(argv)
    common = common_words()
    train = documents(args.docs, heldout=False, seed=args.seed) + word_documents(args.seed)
    val = documents(args.docs // 5, heldout=False, seed=args.seed + 1)
    held = documents(args.docs // 4, heldout=True, seed=args.seed + 2)
    benign = benign_texts(args.seed)
    rng = random.Random(args.seed)
    rng.shuffle(benign)
    cut = len(benign) * 4 // 5
    words, hidden = ordinary_words(), hidden_lexicon(args.seed)
    # the scorer the training reads unknown words with knows only the names the training lexicon keeps; the
    # shipped one learns from every name
    chars_train, _ = train_chars(hidden[0] | hidden[1], words)
    chars, chars_report = train_chars(lexicon.given_names() | lexicon.surnames(), words)
    print(f"char scorer: {json.dumps(chars_report)}")
    feats, labels, _, missing = featurise(train + benign[:cut], common, chars_train, hidden)
    print(f"{len(train)} documents + {cut} benign texts: {len(labels)} candidates, {sum(labels)} positive, "
          f"{missing} gold spans without a candidate")  # fmt: skip
    writers = writer_documents(args.writers)
    by_writer = {w: featurise(docs, common, chars_train, hidden)[:2] for w, docs in writers.items()}

    def fit_with(kept: list[str]) -> dict[str, float]:
        """Fitted on the synthetic documents and the `kept` writers' messages, each WRITER_REPEAT times."""
        f, y = list(feats), list(labels)
        for w in kept:
            f += by_writer[w][0] * WRITER_REPEAT
            y += by_writer[w][1] * WRITER_REPEAT
        return fit(f, y, args.l2, args.steps)

    weights = fit_with(sorted(writers))
    # each writer's messages ranked by a model fitted without them: what a new writer's names would meet
    ranked: dict[str, list[Ranked]] = {}
    for w, docs in writers.items():
        alone = name_model.NameModel(fit_with([v for v in writers if v != w]), 0.0, common, chars=chars)
        ranked[w] = [alone.ranked(simplified(doc.text)) for doc in docs]
    all_ranked = [r for w in writers for r in ranked[w]]
    all_docs = [doc for w in writers for doc in writers[w]]
    model = name_model.NameModel(weights, 0.0, common, chars=chars)
    val_benign = [model.ranked(simplified(doc.text)) for doc in benign[cut:]]
    thresholds = {}
    for script in ("latin", "zh"):
        thresholds[script], curve = choose_line(all_ranked, all_docs, val_benign, script == "zh")
        for row in curve:
            print(
                f"  {script} threshold {row['threshold']:5.2f}: writers out of fold precision"
                f" {row['precision']:.4f} recall {row['recall']:.4f} net {row['net']},"
                f" benign with a name {row['benign_flagged']}/{len(val_benign)}"
            )
    threshold = thresholds["latin"]
    model = name_model.NameModel(weights, threshold, common, thresholds["zh"], chars=chars)
    unseen = name_model.NameModel(
        weights, threshold, common, thresholds["zh"], chars=chars_train, lexicon=hidden
    )
    held_writers = {w: writer_counts(ranked[w], writers[w], threshold, thresholds["zh"]) for w in writers}
    report = {
        "validation": span_scores(model, val),
        "held_out_writers": held_writers,
        "writers_out_of_fold": writer_counts(all_ranked, all_docs, threshold, thresholds["zh"]),
        "heldout": span_scores(model, held),
        # the held-out documents with the training's part of the lexicon hidden: names read by letters alone
        "heldout_hidden_lexicon": span_scores(unseen, held),
        "char_scorer": chars_report,
        "benign_false_positives": span_scores(model, benign[cut:])["false_positives"],
    }
    print(f"thresholds {thresholds}, {len(weights)} weights: {json.dumps(report)}")
    out = {
        "format": name_model.FORMAT,
        "trained": {
            "docs": args.docs,
            "seed": args.seed,
            "steps": args.steps,
            "l2": args.l2,
            "writers": {w: len(d) for w, d in writers.items()},
            **report,
        },
        "threshold": threshold,
        "threshold_zh": thresholds["zh"],
        "common_words": sorted(common),
        "weights": dict(sorted(weights.items())),
        "char_lines": chars.lines,
        "char_weights": {g: round(w, 3) for g, w in sorted(chars.weights.items()) if abs(w) >= 0.01},
        "ordinary_words": sorted(words),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False) + "\n", encoding="utf-8")
    args.heldout_out.parent.mkdir(parents=True, exist_ok=True)
    with args.heldout_out.open("w", encoding="utf-8") as fh:
        for doc in held:
            row = {
                "text": doc.text,
                "spans": doc.spans,
                "fmt": doc.fmt,
                "locale": doc.locale,
                "lang": doc.lang,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
