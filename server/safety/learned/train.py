"""Train the learned detectors that ship with the safety layer (server/safety/learned/weights.json):
crisis_self_harm, medical_emergency and prompt_injection, one featurisation shared by all three.

    .venv/bin/python -m server.safety.learned.train [--out benchmarks/results/learned_detectors.json]
        [--model server/safety/learned/weights.json] [--no-timing] [--grid L2 ...]

The rule-based rails meet their recall goals on the sets they were tuned on but generalise less well to new
wording; a small hashed n-gram logistic regression per category, OR'd with the rules in the engine
(server/safety/engine.py; per-profile switches `<category>.model` and `<category>.model_action` in the
policy), catches much of what the rules miss.

Training data, per category: the labelled sets in TRAIN_SPLITS (tests/server/safety/eval/; positives: cases
labelled or expected with the category; negatives: everything else, hard negatives and other categories
included) plus the corpora in data/ next to this file: crisis_corpus.jsonl (lines {"id", "lang", "crisis":
bool, "text"}; crisis only) and emergency_injection_corpus.jsonl (lines {"id", "lang", "labels", "text"};
emergency and injection only), and data/writers/*.jsonl (messages from independent writers, each briefed on
a voice and dimensions and never shown the rules; lines {"id", "writer", "lang", "labels", "text"}; all three
categories; training_data.py reads them all). A corpus trains only the categories it was labelled for: an
overdose in the crisis corpus may well be an emergency, and the emergency/injection corpus carries no crisis
labels, so neither is used as the other's negatives. Nothing else is read: a blind set kept UNTUNED stays
unseen by everything that picks a setting here.

Features: server.safety.learned.model.featurise, the function the gateway runs (no train/serve skew; the
script checks that every training message scores the same from its training vectors as through the
run-time scorer, LearnedModel.scores, which scores every category from one featurisation): per segment,
English word uni/bigrams and 5-letter prefixes and Chinese character 1-3-grams hashed into 2**18 buckets,
plus a per-segment offset; a message's vector is the sum over its segments. Buckets seen in fewer than
MIN_DF training messages are left out. Model per category: L2 logistic regression, class-balanced,
full-batch Adam on sparse vectors (numpy). The run-time score is the best window of 1-4 segments of a
message, so a long ordinary message offers many windows: each fit adds synthetic negatives shaped like
windows (2-4 segments of random negative messages), then mines the highest-scoring of 50,000 random negative
windows (3 rounds x 1,000) and refits.

Model selection (L2 strength) and the decision threshold come from grouped cross-validation on the training
data only, per category: groups are the files (probes in three groups of batches: probe1-4,
probe5-8, probe9+; each corpus one group; each writer one group, so a fold's score is on a voice it never
trained on);
every out-of-fold score is the run-time scorer's on the real message text; the threshold gives the highest
out-of-fold recall while out-of-fold negatives fire <= MAX_FP (2 % crisis, 1 % emergency, 0.5 % injection),
placed mid-way in the gap that keeps that recall. Reported per group: model recall and negative FP, rules
alone, and rules OR model (the shipped system; the rules were tuned on most of these sets, so the rules'
figures are mostly not out-of-sample); out-of-fold firing on ~4,000-character messages made only of held-out
negatives (hard negatives back to back - a stress test; the rules' rate on the same messages is given);
recall of held-out positives buried in such messages; the blind sets in FIRST_LOOKS as they were blind (the
rules' first look OR the model out of fold).

Deterministic (fixed seeds): the same data gives the same model file byte for byte. Writes the model to
server/safety/learned/weights.json and the record of this run to benchmarks/results/learned_detectors.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[3]

from benchmarks.safety_eval import load_cases
from server.safety.learned import model as cm
from server.safety.learned.fitting import (
    AUG_NEG,
    MIN_DF,
    MINE_KEEP,
    MINE_ROUNDS,
    MINE_SAMPLES,
    STEPS,
    Vectors,
    fit,
    model_of,
    vector_score,
)
from server.safety.learned.training_data import CORPUS, EI_CORPUS, TRAIN_SPLITS, labels_of, load_training
from server.safety.rules import crisis, emergency, injection

CRISIS, EMERGENCY, INJECTION = cm.LEARNED_CATEGORIES
RULES = {CRISIS: crisis.detect, EMERGENCY: emergency.detect, INJECTION: injection.detect}
# threshold rule: highest out-of-fold recall with out-of-fold negative FP <= MAX_FP[category]. Injection is
# stricter: a false positive there changes how the request is handled (see default_policy.yaml), its detector
# alone was a third of the benign firings on unseen text (talk about prompts and jailbreaks), and out of fold
# 0.5 % costs 0.962 -> 0.942 of its recall (rules OR model 0.975 -> 0.959) for a third fewer negatives firing
MAX_FP = {CRISIS: 0.02, EMERGENCY: 0.01, INJECTION: 0.005}
# segments per scoring window: emergency is scored sentence by sentence (an emergency is told in one
# sentence; a long history whose sentences each mention something medical must not add up to one - with
# windows of 4, neutral third-person sentences added up)
WINDOWS = {CRISIS: cm.WINDOW, EMERGENCY: 1, INJECTION: cm.WINDOW}
L2_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
# veto rule: a rule hit the model scores below the veto line is dropped (teaching, fiction, history,
# translation: situations the rules read as the real thing). The line is the highest that, out of fold, drops
# at most MAX_VETO_LOSS of the vetoable rule hits on positives (for crisis: not those said outright).
MAX_VETO_LOSS = 0.01
PRUNE = 1e-3  # weights smaller than this are not shipped
SEED = 20240611
LENGTH = 4000
LONG_MESSAGES = 200  # per CV fold: 4,000-character messages of held-out negatives


def pick_threshold(scores: list[float], y: list[int], max_fp: float) -> float:
    """The highest recall with at most max_fp of the negatives at or above the threshold; among the thresholds
    with that recall, the middle of the gap between the highest negative left below and the lowest positive
    still found (a margin on both sides: where recall is easy, as for injection, the threshold does not sit
    at the edge of the negatives)."""
    neg = sorted((s for s, t in zip(scores, y) if not t), reverse=True)
    allowed = int(max_fp * len(neg))  # negatives allowed at or above the threshold
    if allowed >= len(neg):
        return min(scores)
    lo = neg[allowed]  # the threshold must be above this negative
    found = [s for s, t in zip(scores, y) if t and s > lo]
    return (lo + min(found)) / 2 if found else lo + 1e-6


def pick_veto(scores: list[float], y: list[int], rule_hit: list[bool], max_loss: float) -> float | None:
    """The veto line: midway between the highest rule-hit positive allowed below it and the next one up
    (None when the budget allows no positive to be dropped)."""
    pos = sorted(s for s, t, r in zip(scores, y, rule_hit) if t and r)
    allowed = int(max_loss * len(pos))
    if allowed == 0 or allowed >= len(pos):
        return None
    return (pos[allowed - 1] + pos[allowed]) / 2


def veto_report(
    data: list[dict[str, Any]], scores: list[float], rule_hit: list[bool], veto: float | None
) -> dict[str, Any]:
    """Out of fold, per group and overall: the rule hits on positives and on negatives, and how many of each
    the veto drops."""

    def counts(idx: list[int]) -> dict[str, Any]:
        tp = [i for i in idx if rule_hit[i] and data[i]["y"]]
        fp = [i for i in idx if rule_hit[i] and not data[i]["y"]]
        below = (lambda i: scores[i] < veto) if veto is not None else (lambda i: False)
        return {
            "rule_hits_on_positives": len(tp),
            "dropped": sum(map(below, tp)),
            "rule_hits_on_negatives": len(fp),
            "dropped_negatives": sum(map(below, fp)),
        }

    groups = sorted({d["group"] for d in data})
    by_group = {g: counts([i for i, d in enumerate(data) if d["group"] == g]) for g in groups}
    return {"veto_below": veto, "all": counts(list(range(len(data)))), "by_group": by_group}


def rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def long_message(rng: random.Random, pool: list[str], insert: str | None = None) -> tuple[str, list[str]]:
    """~LENGTH characters of whole pool texts joined by spaces, `insert` (if any) at a random place;
    returns the message and the pool texts in it."""
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) + (len(insert) if insert else 0) < LENGTH:
        parts.append(rng.choice(pool))
    used = list(parts)
    if insert is not None:
        parts.insert(rng.randrange(len(parts) + 1), insert)
    return " ".join(parts), used


def cross_validate(
    data: list[dict[str, Any]], vec: Vectors, l2: float, rules: Any, window: int = cm.WINDOW
) -> dict[str, Any]:
    """Out-of-fold scores of every message (the run-time scorer on its text), and long messages built from
    each held-out fold: negatives only (score, highest score of a part alone, rules fire) and with one
    held-out positive buried in them (score)."""
    groups = sorted({d["group"] for d in data})
    oof = [0.0] * len(data)
    long_neg: list[tuple[float, float, bool]] = []
    long_pos: list[float] = []
    for k, g in enumerate(groups):
        tr = [i for i, d in enumerate(data) if d["group"] != g]
        te = [i for i, d in enumerate(data) if d["group"] == g]
        weights, bias = fit(
            [vec.docs[i] for i in tr], [vec.segments[i] for i in tr], [data[i]["y"] for i in tr], l2, SEED + k
        )
        model = model_of(weights, bias, 0.0, window)
        for i in te:
            oof[i] = model.score(vec.views[i])
        alone = {data[i]["text"]: oof[i] for i in te}
        rng = random.Random(SEED + k)
        for lang in ("en", "zh"):
            pool = [data[i]["text"] for i in te if not data[i]["y"] and data[i]["lang"] == lang]
            pos = [data[i]["text"] for i in te if data[i]["y"] and data[i]["lang"] == lang]
            if len(pool) < 10:
                continue
            for _ in range(LONG_MESSAGES // 2):
                text, used = long_message(rng, pool)
                view = cm.view_of(text)
                long_neg.append((model.score(view), max(alone[t] for t in used), bool(rules(view))))
            for text in pos:
                long_pos.append(model.score(cm.view_of(long_message(rng, pool, text)[0])))
    return {"oof": oof, "long_neg": long_neg, "long_pos": long_pos}


def long_report(res: dict[str, Any], thr: float) -> dict[str, Any]:
    neg = res["long_neg"]
    return {
        "messages": len(neg),
        "model_fires": rate(sum(s >= thr for s, _, _ in neg), len(neg)),
        # firing although no part fires alone: what adding up a window costs
        "model_fires_no_part_fires": rate(sum(s >= thr > a for s, a, _ in neg), len(neg)),
        "rules_fire": rate(sum(r for _, _, r in neg), len(neg)),
        "buried_positives": len(res["long_pos"]),
        "buried_positive_recall": rate(sum(s >= thr for s in res["long_pos"]), len(res["long_pos"])),
    }


def report(data: list[dict[str, Any]], oof: list[float], thr: float, rules: list[bool]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for g in ["all", *sorted({d["group"] for d in data})]:
        idx = [i for i, d in enumerate(data) if g == "all" or d["group"] == g]
        pos = [i for i in idx if data[i]["y"]]
        neg = [i for i in idx if not data[i]["y"]]
        out[g] = {
            "positives": len(pos),
            "negatives": len(neg),
            "model_recall": rate(sum(oof[i] >= thr for i in pos), len(pos)),
            "model_negative_fp": rate(sum(oof[i] >= thr for i in neg), len(neg)),
            "rules_recall": rate(sum(rules[i] for i in pos), len(pos)),
            "rules_negative_fp": rate(sum(rules[i] for i in neg), len(neg)),
            "rules_or_model_recall": rate(sum(rules[i] or oof[i] >= thr for i in pos), len(pos)),
            "rules_or_model_negative_fp": rate(sum(rules[i] or oof[i] >= thr for i in neg), len(neg)),
        }
    return out


FIRST_LOOKS = {  # blind sets' first looks: the rules' verdicts before any rule was fitted to the set
    "fresh4": "safety_first_looks/fresh4.json",
    "fresh5": "safety_first_looks/fresh5_rules_only.json",
    "fresh7": "safety_first_looks/fresh7_rules_only.json",
}


def first_look(
    data: list[dict[str, Any]], oof: list[float], thr: float, category: str, split: str
) -> dict[str, Any] | None:
    """`split` as it was blind: the rules' first look on it (recorded before any rule was fitted to it) OR the
    model's out-of-fold score (the split held out of training)."""
    path = REPO / "benchmarks" / "results" / FIRST_LOOKS[split]
    if not path.exists():
        return None
    look = json.loads(path.read_text(encoding="utf-8"))
    look = look["splits"][split] if "splits" in look else look
    missed = {m["id"] for m in look["misses"] if category in m["missed"]}
    extra_cat = {m["id"] for m in look["misses"] if category in m["extra"]}
    extra_any = {m["id"] for m in look["misses"] if m["extra"]}
    cases = {c["id"]: c for c in load_cases(split)}
    idx = [i for i, d in enumerate(data) if d["group"] == split]
    pos = [i for i in idx if data[i]["y"]]
    benign = [i for i in idx if not labels_of(cases[data[i]["id"]])]
    rules = {i: (data[i]["id"] not in missed) if data[i]["y"] else data[i]["id"] in extra_cat for i in idx}
    model = {i: oof[i] >= thr for i in idx}
    return {
        "positives": len(pos),
        "benign_cases": len(benign),
        "rules_first_look_recall": rate(sum(rules[i] for i in pos), len(pos)),
        "model_oof_recall": rate(sum(model[i] for i in pos), len(pos)),
        "rules_first_look_or_model_recall": rate(sum(rules[i] or model[i] for i in pos), len(pos)),
        "benign_fp_rules_first_look": rate(sum(data[i]["id"] in extra_any for i in benign), len(benign)),
        "benign_fp_rules_first_look_or_this_model": rate(
            sum(data[i]["id"] in extra_any or model[i] for i in benign), len(benign)
        ),
    }


def timing(model: cm.LearnedModel, data: list[dict[str, Any]], iterations: int = 1000) -> dict[str, Any]:
    """The run-time scorer's time (every category at once) per 4,000-character message (view computed outside
    the timing)."""
    rng = random.Random(7)
    out: dict[str, Any] = {}
    for lang in ("en", "zh"):
        pool = [d["text"] for d in data if d["lang"] == lang and not d["labels"]]
        views = [cm.view_of(long_message(rng, pool)[0][:LENGTH]) for _ in range(iterations)]
        for v in views[:50]:
            model.fired(v)
        gc.collect()
        gc.freeze()  # the training data's objects would otherwise make each cyclic GC pass slow
        wall, cpu = [], []
        for v in views:
            c0, t0 = time.thread_time(), time.perf_counter()
            model.fired(v)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)

        def pick(s: list[float], q: float) -> float:
            return round(sorted(s)[min(len(s) - 1, int(q * len(s)))], 4)

        out[lang] = {
            "p50_ms": pick(wall, 0.5),
            "p99_ms": pick(wall, 0.99),
            "mean_ms": round(statistics.fmean(wall), 4),
            "cpu_p50_ms": pick(cpu, 0.5),
            "cpu_p99_ms": pick(cpu, 0.99),
        }
    out["load_average_1m"] = round(os.getloadavg()[0], 2)
    return out


def train_category(
    category: str, data: list[dict[str, Any]], vec: Vectors, grid: tuple[float, ...]
) -> dict[str, Any]:
    """Grouped CV over the L2 grid, then the model on every message of this category's training data."""
    idx = [i for i, d in enumerate(data) if category in d["cats"]]
    sub = [{**data[i], "y": int(category in data[i]["labels"])} for i in idx]
    sv = vec.subset(idx)
    y = [d["y"] for d in sub]
    groups = sorted({d["group"] for d in sub})
    max_fp = MAX_FP[category]
    print(
        f"[{category}] {len(sub)} messages, {sum(y)} positive, {len(sub) - sum(y)} negative, "
        f"{len(groups)} CV groups ({', '.join(groups)}); threshold at out-of-fold negative FP <= {max_fp}"
    )
    rule_hit = [bool(RULES[category](v)) for v in sv.views]  # the rules on the view the engine gives them
    cv: dict[str, Any] = {}
    for l2 in grid:
        t0 = time.perf_counter()
        res = cross_validate(sub, sv, l2, RULES[category], WINDOWS[category])
        thr = pick_threshold(res["oof"], y, max_fp)
        rep = report(sub, res["oof"], thr, rule_hit)
        res.update(threshold=thr, report=rep, long=long_report(res, thr))
        cv[str(l2)] = res
        a, lg = rep["all"], res["long"]
        print(
            f"  l2={l2:<5} threshold {thr:7.3f}  OOF recall {a['model_recall']:.3f} at negative FP "
            f"{a['model_negative_fp']:.3f}; rules OR model {a['rules_or_model_recall']:.3f} / "
            f"{a['rules_or_model_negative_fp']:.3f}; 4,000-char negatives: model fires {lg['model_fires']} "
            f"(no part alone {lg['model_fires_no_part_fires']}), rules {lg['rules_fire']}; "
            f"buried positives {lg['buried_positive_recall']}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    best = max(grid, key=lambda l2: (cv[str(l2)]["report"]["all"]["model_recall"], l2))
    chosen = cv[str(best)]
    thr = chosen["threshold"]
    # the engine never vetoes a crisis said outright (a strong-tier rule): those hits are not the veto's
    outright = [category == CRISIS and crisis.said_outright(v) for v in sv.views]
    vetoable = [r and not o for r, o in zip(rule_hit, outright)]
    veto = pick_veto(chosen["oof"], y, vetoable, MAX_VETO_LOSS)
    vetoed = veto_report(sub, chosen["oof"], vetoable, veto)
    a = vetoed["all"]
    print(
        f"  veto below {veto}: out of fold it drops {a['dropped']} of {a['rule_hits_on_positives']} "
        f"vetoable rule hits on positives and {a['dropped_negatives']} of {a['rule_hits_on_negatives']} "
        "on negatives"
    )
    weights, bias = fit(sv.docs, sv.segments, y, best, SEED)
    nz = np.flatnonzero(np.abs(weights) >= PRUNE)
    trained = {
        "messages": len(sub),
        "positives": sum(y),
        "groups": groups,
        "l2": best,
        "cv_recall": chosen["report"]["all"]["model_recall"],
        "cv_negative_fp": chosen["report"]["all"]["model_negative_fp"],
        "max_fp": max_fp,
        "script": "server/safety/learned/train.py",
    }
    weights_out = {
        "bias": round(bias, 6),
        "threshold": round(thr, 6),
        "veto_below": None if veto is None else round(veto, 6),
        "window_segments": WINDOWS[category],
        "trained": trained,
        "buckets": [int(i) for i in nz],
        "weights": [round(float(weights[i]), 5) for i in nz],
    }
    blind = {split: first_look(sub, chosen["oof"], thr, category, split) for split in FIRST_LOOKS}
    record = {
        "training": {
            "messages": len(sub),
            "positives": sum(y),
            "negatives": len(sub) - sum(y),
            "groups": groups,
        },
        "l2_grid": list(grid),
        "l2_chosen": best,
        "threshold": thr,
        "max_fp": max_fp,
        "window_segments": WINDOWS[category],
        "weights_shipped": len(nz),
        "cv": {
            l2: {"threshold": v["threshold"], "long_messages": v["long"], "report": v["report"]}
            for l2, v in cv.items()
        },
        "cv_missed_ids": [
            d["id"] for d, sc, r in zip(sub, chosen["oof"], rule_hit) if d["y"] and sc < thr and not r
        ],
        "cv_model_false_positive_ids": [
            d["id"] for d, sc in zip(sub, chosen["oof"]) if not d["y"] and sc >= thr
        ],
        "blind_first_looks": blind,
        "rule_veto": vetoed,
    }
    return {
        "idx": idx,
        "sub": sub,
        "vec": sv,
        "y": y,
        "weights": weights_out,
        "record": record,
        "chosen": chosen,
        "best": best,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "learned_detectors.json"))
    parser.add_argument("--model", default=str(Path(cm.__file__).with_name(cm.WEIGHTS_FILE)))
    parser.add_argument("--no-timing", action="store_true", help="skip the scorer timing")
    parser.add_argument(
        "--grid",
        nargs="+",
        default=[str(v) for v in L2_GRID],
        help="L2 grid for every category (default %(default)s); CATEGORY=L2 fixes one category's",
    )
    args = parser.parse_args()
    grids: dict[str, tuple[float, ...]] = {}
    common = tuple(float(v) for v in args.grid if "=" not in v) or L2_GRID
    for v in args.grid:
        if "=" in v:
            c, val = v.split("=", 1)
            if c not in cm.LEARNED_CATEGORIES:
                raise SystemExit(f"--grid: unknown category {c!r}")
            grids[c] = (*grids.get(c, ()), float(val))

    # ---- 1. training data: the labelled sets and the corpora, nothing else
    data = load_training()
    print(
        f"training: {len(data)} messages; crisis corpus {'read' if CORPUS.exists() else 'absent'}, "
        f"emergency/injection corpus {'read' if EI_CORPUS.exists() else 'absent'}"
    )
    vec = Vectors([d["text"] for d in data])

    # ---- 2. per category: grouped CV (L2 and threshold from out-of-fold scores only), then the model
    results = {c: train_category(c, data, vec, grids.get(c, common)) for c in cm.LEARNED_CATEGORIES}

    # ---- 3. the shipped model file: every category, one featurisation
    payload = {
        "format": cm.FORMAT,
        "featuriser": {
            "version": cm.FEATURISER_VERSION,
            "hash_bits": cm.HASH_BITS,
            "window_segments": cm.WINDOW,
            "segment_cap_chars": cm.SEGMENT_CAP,
            "prefix_chars": cm.PREFIX,
        },
        "categories": {c: r["weights"] for c, r in results.items()},
    }
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"
    Path(args.model).write_text(text, encoding="utf-8")
    shipped = cm.LearnedModel.load(args.model)
    all_scores = [shipped.scores(v) for v in vec.views]
    skew = 0.0
    for j, c in enumerate(shipped.categories):
        single = shipped.category(c)
        for i in results[c]["idx"]:
            skew = max(
                skew,
                abs(
                    all_scores[i][j]
                    - vector_score(single.weights, single.bias, vec.segments[i], single.window)
                ),
                abs(all_scores[i][j] - single.score(vec.views[i])),
            )
    if skew > 1e-6:
        raise SystemExit(f"training vectors and the run-time scorer disagree by {skew}")
    for j, c in enumerate(shipped.categories):
        r = results[c]
        fired = [all_scores[i][j] >= shipped.threshold[j] for i in r["idx"]]
        r["record"]["in_sample"] = {
            "recall": rate(sum(f for f, t in zip(fired, r["y"]) if t), sum(r["y"])),
            "negative_fp": rate(sum(f for f, t in zip(fired, r["y"]) if not t), len(r["y"]) - sum(r["y"])),
        }
    lat = None if args.no_timing else timing(shipped, data)
    out = {
        "train_splits": list(TRAIN_SPLITS),
        "corpora": [str(p.relative_to(REPO)) for p in (CORPUS, EI_CORPUS) if p.exists()],
        "model": {
            "type": "per category: L2 logistic regression over hashed n-grams, class-balanced, sparse-numpy "
            "Adam; run time: server/safety/learned_model.py LearnedModel (one featurisation, a "
            "[buckets, categories] weight matrix, numpy over code points)",
            "features": f"learned_model.featurise v{cm.FEATURISER_VERSION}: match view; segments at sentence "
            f"ends, spaces touching CJK and every {cm.SEGMENT_CAP} chars; EN word uni/bigrams + "
            f"{cm.PREFIX}-char prefixes, ZH char 1-3-grams, a per-segment offset; "
            f"2**{cm.HASH_BITS} buckets; min_df {MIN_DF}; "
            f"score = bias + max over windows of 1-{cm.WINDOW} segments (per category: "
            f"{WINDOWS})",
            "augmentation": f"{AUG_NEG}x negatives (windows of 2-{cm.WINDOW} negative segments); "
            f"hard-negative "
            f"mining {MINE_ROUNDS} rounds x {MINE_KEEP} of {MINE_SAMPLES} sampled windows",
            "model_file_bytes": len(text.encode("utf-8")),
            "steps": STEPS,
            "seed": SEED,
        },
        "categories": {c: r["record"] for c, r in results.items()},
        "train_serve_max_score_difference": skew,
        "scorer_latency_4000_chars_all_categories": lat,
    }
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    # ---- 4. tables
    def f(v: float | None) -> str:
        return "    -" if v is None else f"{v:.3f}"

    for c, r in results.items():
        rec = r["record"]
        print(
            f"\n[{c}] grouped CV, out of fold (l2={r['best']}, threshold {rec['threshold']:.3f}, "
            f"max FP {rec['max_fp']}); in-sample {rec['in_sample']}:"
        )
        print(
            f"{'group':<27}{'pos':>5}{'neg':>6}{'model rec':>10}{'model FP':>9}"
            f"{'rules rec':>10}{'rules FP':>9}"
            f"{'OR rec':>8}{'OR FP':>7}"
        )
        for g, row in r["chosen"]["report"].items():
            print(
                f"{g:<27}{row['positives']:>5}{row['negatives']:>6}{f(row['model_recall']):>10}"
                f"{f(row['model_negative_fp']):>9}{f(row['rules_recall']):>10}{f(row['rules_negative_fp']):>9}"
                f"{f(row['rules_or_model_recall']):>8}{f(row['rules_or_model_negative_fp']):>7}"
            )
        lg = r["chosen"]["long"]
        print(
            f"{lg['messages']} 4,000-char messages of held-out negatives: model fires {lg['model_fires']} "
            f"({lg['model_fires_no_part_fires']} where no part fires alone), rules fire {lg['rules_fire']}; "
            f"{lg['buried_positives']} held-out positives buried in them "
            f"found: {lg['buried_positive_recall']}"
        )
        for split, b in rec["blind_first_looks"].items():
            if b:
                print(
                    f"{split} as it was blind: rules' first look {b['rules_first_look_recall']}, model out "
                    f"of fold "
                    f"{b['model_oof_recall']}, first look OR model {b['rules_first_look_or_model_recall']} "
                    f"of "
                    f"{b['positives']}; benign FP {b['benign_fp_rules_first_look']} -> "
                    f"{b['benign_fp_rules_first_look_or_this_model']} of {b['benign_cases']}"
                )
    if lat:
        print("\nscorer time per 4,000-character message, every category (numpy):")
        for name in ("en", "zh"):
            r = lat[name]
            print(
                f"  {name}  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  (cpu "
                f"p99 {r['cpu_p99_ms']:.3f} ms)"
            )
    print(f"\nwrote {args.model} and {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
