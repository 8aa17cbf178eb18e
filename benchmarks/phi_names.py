"""Person names on the held-out synthetic set and held-out writers: the rules, the model, both as wired.

    python benchmarks/phi_names.py [--out benchmarks/results/phi_names.json] [--latency 300]

The set is server/safety/phi/data/names_heldout.jsonl, written by name_train.py from templates and locales
the trainer never saw (forms, letters, chats, labels, transcripts, CSV and JSON rows in English and Chinese;
New Zealand, Irish, Canadian French, Italian, Vietnamese, mainland, Hong Kong and Malaysian names). Each
document lists its gold PERSON spans. Scored, per language and format:
- exact: a found PERSON span equals a gold one (precision and recall);
- covered: a gold name lies inside any PHI span found (what redaction keeps from upstream);
for `rules` (find_phi with the model off), `model` (the model after the rules' exclusions,
name_vetoes.model_names) and `wired` (find_phi as the input rails call it: rules and model).
Held-out writers (server/safety/phi/data/name_writers_heldout/: messages independent writers wrote with
their names marked, which the trainer never reads): per writer, names covered by the rules alone and as
wired, and the writer's no-name messages given a name.
`--latency N`: find_phi with and without the model on N 4,000-character messages of the evaluation set's
benign and PHI sentences (as benchmarks/safety_latency.py builds them), best of three per message, ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.safety.normalize import match_view, simplified
from server.safety.phi import find_phi, name_model, name_vetoes

HELDOUT = REPO / "server" / "safety" / "phi" / "data" / "names_heldout.jsonl"
EVAL = REPO / "tests" / "server" / "safety" / "eval" / "dev.jsonl"
# name writers the trainer never reads (name_train.py reads data/name_writers/)
WRITERS = REPO / "server" / "safety" / "phi" / "data" / "name_writers_heldout"


def _found(kind: str, text: str) -> list[tuple[int, int, str]]:
    if kind == "model":
        return list(name_vetoes.model_names(simplified(text) if not text.isascii() else text))
    return find_phi(text, view=match_view(text), names_model=kind == "wired")


def score(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """Exact-span precision and recall of PERSON spans, and the share of gold names inside any PHI span."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # tp, fp, fn, covered
    for doc in docs:
        found = _found(kind, doc["text"])
        person = {(a, b) for a, b, e in found if e == "PERSON"}
        gold = {(a, b) for a, b in doc["spans"]}
        covered = sum(1 for a, b in gold if any(s <= a and b <= e for s, e, _ in found))
        for key in ("all", doc["lang"], f"{doc['lang']}/{doc['fmt']}"):
            g = groups[key]
            g[0] += len(person & gold)
            g[1] += len(person - gold)
            g[2] += len(gold - person)
            g[3] += covered
    out = {}
    for key, (tp, fp, fn, cov) in sorted(groups.items()):
        out[key] = {
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "covered": round(cov / (tp + fn), 4) if tp + fn else None,
            "spans": tp + fn,
            "false_positives": fp,
        }
    return out


def writer_scores() -> dict[str, Any]:
    """Names in the messages of writers the trainer never read, per writer: the rules alone and as wired
    (covered: a gold name inside any PHI span found), and the writer's no-name messages given a name."""
    from server.safety.phi.name_train import writer_documents

    out: dict[str, Any] = {}
    for writer, docs in writer_documents(WRITERS).items():
        rows = [{"text": d.text, "spans": d.spans, "lang": d.lang, "fmt": "writer"} for d in docs]
        out[writer] = {kind: score(rows, kind)["all"] for kind in ("rules", "wired")}
        empty = [r["text"] for r in rows if not r["spans"]]
        named = sum(1 for text in empty if any(e == "PERSON" for _, _, e in _found("wired", text)))
        out[writer]["no_name_messages_given_a_name"] = f"{named}/{len(empty)}"
    return out


def latency(n: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from safety_latency import PHI_LINES, _message, _pool

    cases = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(0)
    out: dict[str, Any] = {}
    for lang in ("en", "zh"):
        for kind, extra in (("benign", None), ("phi", PHI_LINES[lang])):
            messages = [_message(rng, _pool(cases, lang, False), extra) for _ in range(n)]
            row = {}
            for model in (False, True):
                samples = []
                for text in messages:
                    view = match_view(text)
                    best = float("inf")
                    for _ in range(3):
                        name_model.load().forget()  # the model remembers recent texts: time the work
                        t0 = time.perf_counter()
                        find_phi(text, view=view, names_model=model)
                        best = min(best, time.perf_counter() - t0)
                    samples.append(best * 1000)
                samples.sort()
                row["rules+model" if model else "rules"] = {
                    "p50_ms": round(samples[len(samples) // 2], 4),
                    "p99_ms": round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 4),
                }
            out[f"{lang}_{kind}"] = row
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "phi_names.json"))
    parser.add_argument("--latency", type=int, default=0, help="messages per workload (0: no timing)")
    args = parser.parse_args()
    docs = [json.loads(line) for line in HELDOUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    result: dict[str, Any] = {"documents": len(docs), "scores": {}}
    print(f"{len(docs)} held-out synthetic documents, {sum(len(d['spans']) for d in docs)} names")
    print(
        f"| {'group':<16} | {'kind':<6} | {'precision':>9} | {'recall':>7} | {'covered':>7} | {'spans':>5} |"
    )
    print(f"|{'-' * 18}|{'-' * 8}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 7}|")
    for kind in ("rules", "model", "wired"):
        result["scores"][kind] = score(docs, kind)
    for group in result["scores"]["wired"]:
        if "/" in group:
            continue
        for kind in ("rules", "model", "wired"):
            r = result["scores"][kind][group]
            p = "-" if r["precision"] is None else f"{r['precision']:.3f}"
            print(
                f"| {group:<16} | {kind:<6} | {p:>9} | {r['recall']:>7.3f} | {r['covered']:>7.3f} "
                f"| {r['spans']:>5} |"
            )
    result["held_out_writers"] = writer_scores()
    for writer, row in result["held_out_writers"].items():
        print(
            f"held-out writer {writer}: names covered, rules {row['rules']['covered']:.3f} -> wired "
            f"{row['wired']['covered']:.3f} of {row['wired']['spans']}; no-name messages given a name "
            f"{row['no_name_messages_given_a_name']}"
        )
    if args.latency:
        result["latency_4000_chars"] = latency(args.latency)
        for workload, row in result["latency_4000_chars"].items():
            a, b = row["rules"], row["rules+model"]
            print(
                f"find_phi {workload:<10} rules p50 {a['p50_ms']:.3f} p99 {a['p99_ms']:.3f} | rules+model "
                f"p50 {b['p50_ms']:.3f} p99 {b['p99_ms']:.3f} ms"
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
