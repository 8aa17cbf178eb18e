"""PHI detection against Presidio's recognisers on the labelled evaluation sets (issue #17).

    python benchmarks/phi_presidio.py [--repeat 3] [--out benchmarks/results/phi_presidio.json]

Needs presidio-analyzer (and the spaCy it brings) in the environment; it is not a gateway dependency and
is imported only here, in main(). spaCy's trained pipelines (en_core_web_sm/lg, zh_core_web_sm) are not on
PyPI and cannot be installed where this was written, so Presidio runs on a blank English spaCy pipeline
(tokens, with each token's lower case standing in for its lemma so that the recognisers' context words
still raise scores): every pattern, checksum and phonenumbers recogniser runs, its NER recogniser
(PERSON, LOCATION, NRP, and DATE_TIME beyond the DateRecognizer's patterns) finds nothing. Every text,
Chinese included, is analysed as "en": Presidio ships no Chinese recogniser and its patterns do not depend
on the language, so this is the most Presidio can find here.

Detectors, each on the raw text of every case of every set with gold PHI spans (safety_eval's dev,
heldout, fresh..fresh7 and the untuned fresh8):
- ours: server.safety.phi.find_phi as the gateway runs it (normalised text, spans mapped back to the
  caller's characters), every entity;
- presidio: AnalyzerEngine with its default recogniser registry for "en", all entities, the default
  score threshold (AnalyzerEngine's default_score_threshold, 0: every result is kept);
- presidio@0.5: the same results with score >= 0.5 (a stricter threshold, for reference);
- presidio-all: every predefined pattern/phonenumbers recogniser that supports "en" enabled, including
  those Presidio ships disabled (US health plan member id, MBI, NPI, UK/SG/AU/IN/ZA/CA ids, postcodes).

A gold span counts as caught when it no longer leaks from the text with the detector's spans replaced by
placeholders, with safety_eval's leaked() (the span's text, or for numbers its longest digit run, is gone):
safety_eval's PHI span recall, with one detector's redaction in place of the engine's whole verdict. That
counts a span as caught when part of it was cut (a postcode out of an address); "strict" recall also asks
that every letter and digit of the gold span lies inside a detected span. Benign false positives: spans
found on cases with no label at all. Latency: the median of --repeat timed calls per message, p50/p99 over
messages. Recall per family uses the gold type; fresh8's gold is untyped, so there a span takes the
entity of our detector's overlapping span (marked *), else "UNTYPED~" and presidio-all's entity. Gold spans
one side catches and the other misses are listed by family with their text masked to its shape (digits 9,
letters a, Chinese characters 字): the raw identifiers are never printed. probes.jsonl has no gold spans:
it is scored per case (PHI probes with any span; spans on its hard negatives) and kept out of the pools.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.presidio_engine import build_presidio, presidio_detector
from benchmarks.safety_eval import EVAL_DIR, FRESH, SPLITS, UNTUNED, leaked, load_cases
from server.safety.document import Document, Piece
from server.safety.phi import find_phi

SETS = (*SPLITS, *FRESH, *UNTUNED)
DETECTORS = ("ours", "presidio", "presidio@0.5", "presidio-all")
THRESHOLD_STRICT = 0.5
EXAMPLES = 15
NER_NOTE = (
    "spaCy's trained pipelines (en_core_web_sm/lg, zh_core_web_sm) cannot be installed here (not on PyPI, "
    "no internet), so Presidio runs without NER: a blank 'en' spaCy pipeline (tokens; lower case as lemma "
    "for context words). Its PERSON, LOCATION and NRP come only from NER and are empty; DATE_TIME comes "
    "only from the DateRecognizer's patterns. PERSON, ADDRESS and DATE rows are Presidio-without-NER."
)

Span = tuple[int, int, str, float]


# ---- detectors ---------------------------------------------------------------------------------------
def ours(text: str) -> tuple[str, list[Span]]:
    """find_phi as the engine runs it on one message: the redaction base text and spans in it."""
    piece = Piece.of(("content",), text)
    doc = Document("user", [piece], "\n")
    spans = find_phi(doc.text, None, doc.view)
    if piece.norm == piece.raw:
        return text, [(a, b, k, 1.0) for a, b, k in spans]
    if piece.index is not None:
        return text, [(piece.index[a], piece.raw_end(b), k, 1.0) for a, b, k in spans]
    return piece.norm, [(a, b, k, 1.0) for a, b, k in spans]


# ---- scoring -----------------------------------------------------------------------------------------
def redacted(text: str, spans: list[Span]) -> str:
    """`text` with the union of the (possibly overlapping) spans replaced by placeholders."""
    merged: list[list[Any]] = []
    for a, b, kind, _ in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and a < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
            continue
        merged.append([a, b, kind])
    out, pos = [], 0
    for a, b, kind in merged:
        out.append(text[pos:a])
        out.append(f"[{kind}]")
        pos = b
    out.append(text[pos:])
    return "".join(out)


def covered(gold: dict[str, Any], spans: list[Span]) -> bool:
    """Every letter and digit of the gold span lies inside a detected span (positions on the raw text)."""
    start, end = gold["start"], gold["end"]
    if start < 0:
        return False
    inside = [False] * (end - start)
    for a, b, _, _ in spans:
        for i in range(max(a, start), min(b, end)):
            inside[i - start] = True
    return all(inside[i] for i, ch in enumerate(gold["text"][: end - start]) if ch.isalnum())


def overlapping(gold: dict[str, Any], spans: list[Span]) -> list[Span]:
    return [s for s in spans if gold["start"] >= 0 and s[0] < gold["end"] and gold["start"] < s[1]]


def shape(text: str) -> str:
    """The span's shape, never its characters: digits 9, letters a, Chinese characters 字."""
    out = []
    for ch in text:
        if ch.isdigit():
            out.append("9")
        elif "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff":
            out.append("字")
        elif ch.isalpha():
            out.append("a")
        elif ch == "\n":
            out.append("⏎")
        else:
            out.append(ch)
    return "".join(out)


def code_version() -> dict[str, Any]:
    """The commit the detector was measured at, and any uncommitted change to what was measured."""
    measured = ["server/safety", "benchmarks/safety_eval.py", "tests/server/safety/eval"]
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", *measured],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "uncommitted": None}
    return {"commit": commit, "uncommitted": [line[3:] for line in dirty]}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def run_detector(detect: Any, cases: list[dict[str, Any]], repeat: int) -> list[dict[str, Any]]:
    """Per case: spans (first call), redaction base text, latency (median of `repeat` calls, ms)."""
    rows = []
    for case in cases:
        times = []
        base, spans = "", []
        for k in range(repeat):
            t0 = time.perf_counter()
            got = detect(case["text"])
            times.append((time.perf_counter() - t0) * 1000)
            if k == 0:
                base, spans = got
        rows.append({"base": base, "spans": spans, "ms": statistics.median(times)})
    return rows


def family_of(gold: dict[str, Any], row_ours: dict[str, Any], row_presidio: dict[str, Any]) -> str:
    """The gold type; for untyped gold (fresh8), the entity of our detector's longest overlapping span
    ("PHONE*"), else "UNTYPED" with presidio-all's (its names are not ours: "UNTYPED~US_BANK_NUMBER")."""
    if gold["type"] != "UNTYPED":
        return gold["type"]
    mine = overlapping(gold, row_ours["spans"])
    if mine:
        return max(mine, key=lambda s: s[1] - s[0])[2] + "*"
    theirs = overlapping(gold, row_presidio["spans"])
    if theirs:
        return "UNTYPED~" + max(theirs, key=lambda s: s[1] - s[0])[2]
    return "UNTYPED"


def score_set(
    name: str, cases: list[dict[str, Any]], rows: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Recall, strict recall, benign false positives and latency per detector; per gold span who caught it."""
    per: dict[str, Any] = {}
    spans_out: list[dict[str, Any]] = []
    for det in DETECTORS:
        caught = strict = total = 0
        benign = benign_spans = benign_cases = 0
        extra = 0
        for case, row in zip(cases, rows[det]):
            upstream = redacted(row["base"], row["spans"])
            for gold in case["phi"]:
                total += 1
                hit = not leaked(gold["text"], upstream)
                caught += hit
                strict += hit and covered(gold, row["spans"])
            extra += sum(
                1
                for s in row["spans"]
                if not any(g["start"] >= 0 and s[0] < g["end"] and g["start"] < s[1] for g in case["phi"])
            )
            if not case["labels"]:
                benign += 1
                benign_spans += len(row["spans"])
                benign_cases += bool(row["spans"])
        times = [r["ms"] for r in rows[det]]
        per[det] = {
            "span_recall": _ratio(caught, total),
            "strict_span_recall": _ratio(strict, total),
            "spans_caught": caught,
            "spans_strict": strict,
            "spans": total,
            "benign_cases": benign,
            "benign_false_positive_spans": benign_spans,
            "benign_cases_with_a_span": benign_cases,
            "spans_overlapping_no_gold": extra,
            "latency_ms": {"p50": _pct(times, 0.5), "p99": _pct(times, 0.99), "mean": _mean(times)},
        }
    for i, case in enumerate(cases):
        for gold in case["phi"]:
            rec = {
                "set": name,
                "id": case["id"],
                "lang": case["lang"],
                "family": family_of(gold, rows["ours"][i], rows["presidio-all"][i]),
                "shape": shape(gold["text"]),
            }
            for det in DETECTORS:
                row = rows[det][i]
                rec[det] = not leaked(gold["text"], redacted(row["base"], row["spans"]))
                rec[det + ":by"] = sorted({s[2] for s in overlapping(gold, row["spans"])})
            spans_out.append(rec)
    return {"cases": len(cases), "detectors": per, "gold": spans_out}


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def pool(results: list[dict[str, Any]], rows_by_set: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """The sets' counts added up (recalls over all their spans), latency over all their messages."""
    out: dict[str, Any] = {"cases": sum(results[i]["cases"] for i in range(len(results)))}
    det_out = {}
    for det in DETECTORS:
        parts = [r["detectors"][det] for r in results]
        summed = {
            k: sum(p[k] for p in parts)
            for k in (
                "spans_caught",
                "spans_strict",
                "spans",
                "benign_cases",
                "benign_false_positive_spans",
                "benign_cases_with_a_span",
                "spans_overlapping_no_gold",
            )
        }
        times = [r["ms"] for s in sets for r in rows_by_set[s][det]]
        det_out[det] = {
            "span_recall": _ratio(summed["spans_caught"], summed["spans"]),
            "strict_span_recall": _ratio(summed["spans_strict"], summed["spans"]),
            **summed,
            "latency_ms": {"p50": _pct(times, 0.5), "p99": _pct(times, 0.99), "mean": _mean(times)},
        }
    out["detectors"] = det_out
    return out


def by_family(gold: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    fams: dict[str, dict[str, Any]] = defaultdict(lambda: {"spans": 0, **{d: 0 for d in DETECTORS}})
    for g in gold:
        f = fams[g["family"]]
        f["spans"] += 1
        for det in DETECTORS:
            f[det] += g[det]
    return {
        k: {
            "spans": v["spans"],
            **{d: {"caught": v[d], "recall": _ratio(v[d], v["spans"])} for d in DETECTORS},
        }
        for k, v in sorted(fams.items(), key=lambda kv: (-kv[1]["spans"], kv[0]))
    }


def difference(gold: list[dict[str, Any]], catches: str, misses: str) -> dict[str, Any]:
    """Gold spans `catches` keeps from upstream and `misses` leaks: count, per family and per entity of the
    catching detector, and masked examples taken a family at a time (largest family first)."""
    found = [g for g in gold if g[catches] and not g[misses]]
    by_family = Counter(g["family"] for g in found)
    queues = {f: [g for g in found if g["family"] == f] for f, _ in by_family.most_common()}
    examples: list[dict[str, Any]] = []
    while len(examples) < min(EXAMPLES, len(found)):
        for queue in queues.values():
            if queue and len(examples) < EXAMPLES:
                g = queue.pop(0)
                examples.append(
                    {"id": g["id"], "family": g["family"], "shape": g["shape"], "by": g[catches + ":by"]}
                )
    return {
        "count": len(found),
        "by_family": dict(by_family.most_common()),
        "by_entity": dict(
            Counter("+".join(g[catches + ":by"]) or "(elsewhere)" for g in found).most_common()
        ),
        "examples": examples,
    }


def by_language(gold: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for lang in ("en", "zh"):
        spans = [g for g in gold if g["lang"] == lang]
        out[lang] = {
            "spans": len(spans),
            **{d: _ratio(sum(g[d] for g in spans), len(spans)) for d in DETECTORS},
        }
    return out


def probes(detectors: dict[str, Any], repeat: int) -> dict[str, Any]:
    """probes.jsonl has no gold spans: PHI probes scored per case (any span found), hard negatives
    (expect null, no age-over-89 exemption) for false-positive spans."""
    cases = [json.loads(line) for line in (EVAL_DIR / "probes.jsonl").open(encoding="utf-8") if line.strip()]
    phi = [c for c in cases if c["expect"] == "phi"]
    negatives = [c for c in cases if c["expect"] is None and not c.get("phi_ok")]
    out: dict[str, Any] = {"phi_cases": len(phi), "negative_cases": len(negatives)}
    for det, detect in detectors.items():
        rows_phi = run_detector(detect, phi, 1)
        rows_neg = run_detector(detect, negatives, 1)
        out[det] = {
            "phi_cases_with_a_span": sum(bool(r["spans"]) for r in rows_phi),
            "negative_false_positive_spans": sum(len(r["spans"]) for r in rows_neg),
            "negative_cases_with_a_span": sum(bool(r["spans"]) for r in rows_neg),
        }
        if det == "presidio":
            strict = [[s for s in r["spans"] if s[3] >= THRESHOLD_STRICT] for r in rows_phi]
            strict_neg = [[s for s in r["spans"] if s[3] >= THRESHOLD_STRICT] for r in rows_neg]
            out["presidio@0.5"] = {
                "phi_cases_with_a_span": sum(bool(s) for s in strict),
                "negative_false_positive_spans": sum(len(s) for s in strict_neg),
                "negative_cases_with_a_span": sum(bool(s) for s in strict_neg),
            }
    return out


# ---- report ------------------------------------------------------------------------------------------
def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_report(out: dict[str, Any]) -> None:
    print(f"\n{out['note']}")
    print(f"Presidio score threshold: {out['presidio']['score_threshold']}")
    head = (
        f"{'set':<14}{'detector':<14}{'recall':>8}{'strict':>8}{'caught':>10}"
        f"{'benign FP spans':>17}{'no-gold spans':>15}{'p50 ms':>9}{'p99 ms':>9}"
    )
    print("\n== PHI span recall, benign false positives, latency per message ==")
    print(head)
    rows = [*out["sets"].items(), ("tuned pooled", out["tuned_pooled"]), ("overall", out["overall"])]
    for name, res in rows:
        for det in DETECTORS:
            d = res["detectors"][det]
            lat = d["latency_ms"]
            timing = (
                "  (same run)" if det == "presidio@0.5" else f"{_f(lat['p50'], 2):>8}{_f(lat['p99'], 2):>9}"
            )
            print(
                f"{name:<14}{det:<14}{_f(d['span_recall']):>8}{_f(d['strict_span_recall']):>8}"
                f"{d['spans_caught']:>5}/{d['spans']:<4}"
                f"{d['benign_false_positive_spans']:>6} "
                f"({d['benign_cases_with_a_span']:>3}/{d['benign_cases']:<3})"
                f"{d['spans_overlapping_no_gold']:>14} "
                f"{timing}"
            )
        print()
    for title, fams in (
        ("typed gold (dev, heldout, fresh..fresh7)", out["by_family"]["typed"]),
        (
            "fresh8 (untyped gold: * = our overlapping span's entity, UNTYPED~X = presidio-all's)",
            out["by_family"]["fresh8"],
        ),
    ):
        print(f"== recall per family, {title} ==")
        print(f"{'family':<38}{'spans':>6}" + "".join(f"{d:>14}" for d in DETECTORS))
        for fam, v in fams.items():
            print(f"{fam:<38}{v['spans']:>6}" + "".join(f"{_f(v[d]['recall']):>14}" for d in DETECTORS))
        print()
    print("== recall per language ==")
    print(f"{'spans':<22}{'lang':<6}{'n':>6}" + "".join(f"{d:>14}" for d in DETECTORS))
    for part, langs in out["by_language"].items():
        for lang, v in langs.items():
            print(f"{part:<22}{lang:<6}{v['spans']:>6}" + "".join(f"{_f(v[d]):>14}" for d in DETECTORS))
    print()
    for key, title in (
        ("presidio_not_ours", "caught by presidio (default), missed by ours"),
        ("presidio_all_not_ours", "caught by presidio-all, missed by ours"),
        ("ours_not_presidio", "caught by ours, missed by presidio (default)"),
        ("ours_not_presidio_all", "caught by ours, missed by presidio-all"),
    ):
        d = out["differences"][key]
        print(f"== {title}: {d['count']} gold spans ==")
        print("  by family: " + ", ".join(f"{k} {v}" for k, v in d["by_family"].items()))
        print("  by entity: " + ", ".join(f"{k} {v}" for k, v in d["by_entity"].items()))
        for ex in d["examples"]:
            print(f"    {ex['id']:<22}{ex['family']:<38}{'+'.join(ex['by']) or '-':<36} {ex['shape']}")
        print()
    p = out["probes"]
    print(
        f"== probes.jsonl (no gold spans): {p['phi_cases']} PHI probes, "
        f"{p['negative_cases']} hard negatives =="
    )
    for det in DETECTORS:
        v = p[det]
        print(
            f"{det:<14} PHI probes with a span {v['phi_cases_with_a_span']}/{p['phi_cases']}, "
            f"negatives: {v['negative_false_positive_spans']} spans on "
            f"{v['negative_cases_with_a_span']}/{p['negative_cases']} cases"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per message (median kept)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "phi_presidio.json"))
    args = parser.parse_args()

    # tldextract (Presidio's e-mail recogniser) would fetch the public suffix list at import; offline, use
    # the snapshot it bundles instead of failing a download first
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    try:
        import presidio_analyzer  # noqa: F401
        import spacy
    except ImportError as exc:
        print(
            f"presidio-analyzer is not installed ({exc}); it is a benchmark-only dependency:\n"
            "    pip install presidio-analyzer\n"
            "(no spaCy model is needed: this script runs Presidio's pattern recognisers on a blank pipeline)",
            file=sys.stderr,
        )
        return 2
    from importlib.metadata import version

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    t0, load_at_start = time.perf_counter(), round(os.getloadavg()[0], 2)
    default, default_recs = build_presidio(all_patterns=False)
    every, every_recs = build_presidio(all_patterns=True)
    detectors = {
        "ours": ours,
        "presidio": presidio_detector(default),
        "presidio-all": presidio_detector(every),
    }
    warm = "My name is John Smith, call 212-555-0173 or mail a.b@example.com on 03/05/1971. 电话13812345678"
    for detect in detectors.values():
        for _ in range(5):
            detect(warm)
    print(f"Presidio analyzers built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    results, rows_by_set, gold = {}, {}, []
    for name in SETS:
        cases = load_cases(name)
        rows = {det: run_detector(fn, cases, args.repeat) for det, fn in detectors.items()}
        rows["presidio@0.5"] = [
            {**r, "spans": [s for s in r["spans"] if s[3] >= THRESHOLD_STRICT]} for r in rows["presidio"]
        ]
        res = score_set(name, cases, rows)
        gold.extend(res.pop("gold"))
        results[name] = res
        rows_by_set[name] = rows
        print(f"scored {name}: {len(cases)} cases", file=sys.stderr)
    tuned = [s for s in SETS if s not in UNTUNED]
    out: dict[str, Any] = {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "uname_m": platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_start": load_at_start,
        },
        "versions": {
            "presidio_analyzer": version("presidio-analyzer"),
            "spacy": spacy.__version__,
            "phonenumbers": version("phonenumbers"),
        },
        "code": code_version(),
        "note": NER_NOTE,
        "command": "python benchmarks/phi_presidio.py"
        + (f" --repeat {args.repeat}" if args.repeat != 3 else ""),
        "method": {
            "span_recall": "safety_eval's PHI span recall: a gold span is caught when "
            "safety_eval.leaked() is false on the text with the detector's spans replaced by placeholders",
            "strict_span_recall": "caught, and every letter and digit of the gold span inside a "
            "detected span",
            "benign_false_positive_spans": "spans found on cases with no label "
            "(n cases with a span / benign)",
            "spans_overlapping_no_gold": "spans on any case that overlap no gold span "
            "(gold may be incomplete)",
            "latency": f"median of {args.repeat} calls per message, p50/p99 over messages, one process, "
            "single thread; ours includes normalisation, presidio the spaCy tokenizer",
            "families": "the gold type; fresh8's gold is untyped: the entity of our detector's overlapping "
            "span, marked * (our recall there is ~1 by construction), else UNTYPED~<presidio-all entity>",
            "examples": "gold span text masked to its shape (digits 9, letters a, Chinese characters 字)",
            "languages": "every text is analysed by Presidio as 'en' (no Chinese recognisers exist)",
        },
        "presidio": {
            "nlp_engine": "SpacyNlpEngine subclass over spacy.blank('en') + lower-case-as-lemma component",
            "score_threshold": "AnalyzerEngine default_score_threshold = "
            f"{default.default_score_threshold} (every result kept); presidio@0.5 keeps score >= 0.5",
            "recognizers_default": default_recs,
            "recognizers_all": every_recs,
            "tldextract": "offline: the bundled public suffix snapshot",
        },
        "sets": results,
        "tuned_pooled": pool([results[s] for s in tuned], rows_by_set, tuned),
        "overall": pool(list(results.values()), rows_by_set, list(SETS)),
        "by_family": {
            "typed": by_family([g for g in gold if g["set"] not in UNTUNED]),
            "fresh8": by_family([g for g in gold if g["set"] in UNTUNED]),
            "all": by_family(gold),
        },
        "by_language": {
            "typed": by_language([g for g in gold if g["set"] not in UNTUNED]),
            "fresh8": by_language([g for g in gold if g["set"] in UNTUNED]),
            "all": by_language(gold),
        },
        "differences": {
            "presidio_not_ours": difference(gold, "presidio", "ours"),
            "presidio_all_not_ours": difference(gold, "presidio-all", "ours"),
            "ours_not_presidio": difference(gold, "ours", "presidio"),
            "ours_not_presidio_all": difference(gold, "ours", "presidio-all"),
        },
        "probes": probes(detectors, 1),
    }
    out["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    out["machine"]["runtime_s"] = round(time.perf_counter() - t0, 1)
    print_report(out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out} in {out['machine']['runtime_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
