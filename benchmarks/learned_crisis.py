"""Does a small learned detector help crisis_self_harm recall on unseen wording? An experiment, not a rail.

    python benchmarks/learned_crisis.py [--out benchmarks/results/learned_crisis.json]

Training data: dev, heldout, fresh, fresh2, fresh3 and probes (positives: cases labelled or expected
crisis_self_harm; negatives: everything else, hard negatives included). fresh4 is the test set only: it is
read after the model, its hyper-parameters and its threshold are fixed, and nothing is chosen on it.

Features (cheap, both languages): text is NFKC-normalised and lower-cased and split into sentences; per
sentence, English word unigrams, word bigrams and 5-character word prefixes (a crude stem), and Chinese
character 1-3-grams inside runs of CJK characters; binary within a sentence, vocabulary limited to features
seen in at least two training messages. Model: L2 logistic regression (class-balanced) trained with numpy.
Run-time scorer: pure Python (a dict of weights), score = bias + the largest sum of sentence scores over
windows of up to four consecutive sentences, so a long message is not diluted or inflated by its length.

Model selection (regularisation strength) and the decision threshold are chosen by grouped cross-validation
on the training data only (groups: each training file, probes split into three batches of rounds), the
threshold being the one with the highest out-of-fold recall while out-of-fold negatives fire <= 2 %.

Reports on fresh4: crisis recall/precision for (a) the rules alone, (b) the model alone, (c) rules OR model,
the benign false-positive rate (unlabelled cases on which anything fired), per language, and the pure-Python
scorer's time per 4,000-character message (p50/p99). Writes benchmarks/results/learned_crisis.json and the
weights to benchmarks/results/learned_crisis_weights.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.safety_eval import load_cases  # noqa: E402
from server.safety import SafetyEngine  # noqa: E402

CRISIS = "crisis_self_harm"
TRAIN_SPLITS = ("dev", "heldout", "fresh", "fresh2", "fresh3", "probes")
TEST_SPLIT = "fresh4"
MAX_FP = 0.02          # threshold rule: highest out-of-fold recall with out-of-fold negative FP <= 2 %
ALT_MAX_FP = 0.05      # a second, looser operating point, also fixed on training data only
WINDOW = 4             # sentences per scoring window
MIN_DF = 2
L2_GRID = (0.3, 1.0, 3.0, 10.0)
PROFILE = "patient"    # the profile benchmarks/safety_eval.py scores with
LENGTH = 4000

# ---------------------------------------------------------------- run-time featuriser and scorer (pure Python)

_SENT = re.compile(r"[.!?。！？；;\n]+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


def sentences(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    return [s for s in _SENT.split(text) if s.strip()]


def sentence_features(sent: str) -> set[str]:
    feats: set[str] = set()
    words = [w.replace("'", "") for w in _WORD.findall(sent)]
    prev = "<s>"
    for w in words:
        feats.add("w:" + w)
        feats.add("b:" + prev + " " + w)
        if len(w) > 5:
            feats.add("p:" + w[:5])
        prev = w
    for run in _CJK.findall(sent):
        n = len(run)
        for i in range(n):
            feats.add("c:" + run[i])
            if i + 1 < n:
                feats.add("c:" + run[i:i + 2])
                if i + 2 < n:
                    feats.add("c:" + run[i:i + 3])
    return feats


class Scorer:
    """What would run in the gateway: a dict lookup per feature, no numpy."""

    def __init__(self, weights: dict[str, float], bias: float, threshold: float) -> None:
        self.weights, self.bias, self.threshold = weights, bias, threshold

    def score(self, text: str) -> float:
        get = self.weights.get
        sums = [sum(get(f, 0.0) for f in sentence_features(s)) for s in sentences(text)]
        if not sums:
            return self.bias
        if len(sums) <= WINDOW:
            return self.bias + sum(sums)
        run = sum(sums[:WINDOW])
        best = run
        for i in range(WINDOW, len(sums)):
            run += sums[i] - sums[i - WINDOW]
            best = max(best, run)
        return self.bias + best

    def fires(self, text: str) -> bool:
        return self.score(text) >= self.threshold


# ---------------------------------------------------------------- training (numpy, offline only)

def is_crisis(case: dict[str, Any]) -> bool:
    return CRISIS in case.get("labels", []) or case.get("expect") == CRISIS


def group_of(split: str, case: dict[str, Any]) -> str:
    if split != "probes":
        return split
    rnd = int(re.match(r"probe(\d+)-", case["id"]).group(1))
    return "probes1-4" if rnd <= 4 else "probes5-8" if rnd <= 8 else "probes9-13"


def message_counts(text: str) -> dict[str, int]:
    """Feature counts summed over sentences (binary within a sentence) - the scorer's view of a short text."""
    counts: dict[str, int] = {}
    for s in sentences(text):
        for f in sentence_features(s):
            counts[f] = counts.get(f, 0) + 1
    return counts


def fit(docs: list[dict[str, int]], y: list[int], l2: float) -> tuple[dict[str, float], float]:
    import numpy as np

    df: dict[str, int] = {}
    for d in docs:
        for f in d:
            df[f] = df.get(f, 0) + 1
    vocab = sorted(f for f, n in df.items() if n >= MIN_DF)
    index = {f: i for i, f in enumerate(vocab)}
    X = np.zeros((len(docs), len(vocab)), dtype=np.float32)
    for r, d in enumerate(docs):
        for f, c in d.items():
            j = index.get(f)
            if j is not None:
                X[r, j] = c
    yv = np.asarray(y, dtype=np.float32)
    pos = yv.sum()
    sw = np.where(yv == 1, len(yv) / (2 * pos), len(yv) / (2 * (len(yv) - pos))).astype(np.float32)
    w = np.zeros(len(vocab), dtype=np.float32)
    b = np.float32(0.0)
    # full-batch Adam on the weighted log-loss + (l2 / 2n) * |w|^2
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), 0.0, 0.0
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    n = len(yv)
    for t in range(1, 401):
        z = X @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        g = sw * (p - yv) / n
        gw = X.T @ g + (l2 / n) * w
        gb = float(g.sum())
        m_w = b1 * m_w + (1 - b1) * gw
        v_w = b2 * v_w + (1 - b2) * gw * gw
        m_b = b1 * m_b + (1 - b1) * gb
        v_b = b2 * v_b + (1 - b2) * gb * gb
        w -= lr * (m_w / (1 - b1 ** t)) / (np.sqrt(v_w / (1 - b2 ** t)) + eps)
        b -= lr * (m_b / (1 - b1 ** t)) / ((v_b / (1 - b2 ** t)) ** 0.5 + eps)
    weights = {f: round(float(x), 5) for f, x in zip(vocab, w) if abs(float(x)) >= 1e-4}
    return weights, round(float(b), 5)


def pick_threshold(scores: list[float], y: list[int], max_fp: float) -> float:
    neg = sorted((s for s, t in zip(scores, y) if not t), reverse=True)
    allowed = int(max_fp * len(neg))           # negatives allowed at or above the threshold
    # the threshold sits just above the (allowed+1)-th highest negative score
    return neg[allowed] + 1e-6 if allowed < len(neg) else min(scores)


def rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def cross_validate(data: list[tuple[str, str, int]], l2: float) -> list[float]:
    groups = sorted({g for g, _, _ in data})
    oof = [0.0] * len(data)
    docs = [message_counts(t) for _, t, _ in data]
    for g in groups:
        tr = [i for i, d in enumerate(data) if d[0] != g]
        weights, bias = fit([docs[i] for i in tr], [data[i][2] for i in tr], l2)
        sc = Scorer(weights, bias, 0.0)
        for i, d in enumerate(data):
            if d[0] == g:
                oof[i] = sc.score(d[1])
    return oof


def oof_report(data: list[tuple[str, str, int]], oof: list[float], thr: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for g in ["all", *sorted({d[0] for d in data})]:
        idx = [i for i, d in enumerate(data) if g == "all" or d[0] == g]
        tp = sum(1 for i in idx if data[i][2] and oof[i] >= thr)
        p = sum(1 for i in idx if data[i][2])
        fp = sum(1 for i in idx if not data[i][2] and oof[i] >= thr)
        n = len(idx) - p
        out[g] = {"recall": rate(tp, p), "positives": p, "negative_fp_rate": rate(fp, n), "negatives": n}
    return out


# ---------------------------------------------------------------- evaluation on fresh4

def evaluate(cases: list[dict[str, Any]], rule_cats: list[set[str]], model_fire: list[bool]) -> dict[str, Any]:
    systems = {
        "rules": [CRISIS in c for c in rule_cats],
        "model": model_fire,
        "rules_or_model": [CRISIS in c or m for c, m in zip(rule_cats, model_fire)],
    }
    any_fire = {
        "rules": [bool(c) for c in rule_cats],
        "model": model_fire,
        "rules_or_model": [bool(c) or m for c, m in zip(rule_cats, model_fire)],
    }
    out: dict[str, Any] = {}
    for name, pred in systems.items():
        out[name] = {}
        for lang in ("all", "en", "zh"):
            idx = [i for i, c in enumerate(cases) if lang == "all" or c["lang"] == lang]
            tp = sum(1 for i in idx if pred[i] and is_crisis(cases[i]))
            fp = sum(1 for i in idx if pred[i] and not is_crisis(cases[i]))
            fn = sum(1 for i in idx if not pred[i] and is_crisis(cases[i]))
            benign = [i for i in idx if not cases[i]["labels"]]
            bfp = sum(1 for i in benign if any_fire[name][i])
            bfp_crisis = sum(1 for i in benign if pred[i])
            out[name][lang] = {
                "crisis_recall": rate(tp, tp + fn), "crisis_precision": rate(tp, tp + fp),
                "tp": tp, "fp": fp, "fn": fn,
                "benign_fp_rate": rate(bfp, len(benign)), "benign_fp": bfp,
                "benign_fp_from_crisis": bfp_crisis, "benign_cases": len(benign),
            }
        out[name]["missed_crisis_ids"] = [c["id"] for c, p in zip(cases, pred) if is_crisis(c) and not p]
        out[name]["false_crisis_ids"] = [c["id"] for c, p in zip(cases, pred) if p and not is_crisis(c)]
    return out


def timing(scorer: Scorer, pools: dict[str, list[str]], iterations: int = 300) -> dict[str, Any]:
    rng = random.Random(7)

    def message(pool: list[str]) -> str:
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < LENGTH:
            parts.append(rng.choice(pool))
        return " ".join(parts)[:LENGTH]

    out: dict[str, Any] = {}
    for name, pool in pools.items():
        msgs = [message(pool) for _ in range(iterations)]
        for m in msgs[:30]:
            scorer.score(m)
        wall, cpu = [], []
        for m in msgs:
            c0, t0 = time.thread_time(), time.perf_counter()
            scorer.fires(m)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
        pick = lambda s, q: round(sorted(s)[min(len(s) - 1, int(q * len(s)))], 4)  # noqa: E731
        out[name] = {"p50_ms": pick(wall, 0.5), "p99_ms": pick(wall, 0.99), "mean_ms": round(statistics.fmean(wall), 4),
                     "cpu_p50_ms": pick(cpu, 0.5), "cpu_p99_ms": pick(cpu, 0.99)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "learned_crisis.json"))
    parser.add_argument("--weights", default=str(REPO / "benchmarks" / "results" / "learned_crisis_weights.json"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    # ---- 1. training data and model selection: training files only
    data: list[tuple[str, str, int]] = []
    for split in TRAIN_SPLITS:
        for case in load_cases(split):
            data.append((group_of(split, case), case["text"], int(is_crisis(case))))
    y = [d[2] for d in data]
    print(f"training: {len(data)} messages, {sum(y)} crisis, {len(data) - sum(y)} other "
          f"({len({d[0] for d in data})} CV groups)")
    cv: dict[str, Any] = {}
    for l2 in L2_GRID:
        oof = cross_validate(data, l2)
        thr = pick_threshold(oof, y, MAX_FP)
        rep = oof_report(data, oof, thr)
        cv[str(l2)] = {"oof": oof, "threshold": thr, "report": rep}
        print(f"  l2={l2:<5} grouped-CV recall {rep['all']['recall']:.3f} at negative FP "
              f"{rep['all']['negative_fp_rate']:.3f}")
    best = max(L2_GRID, key=lambda l2: (cv[str(l2)]["report"]["all"]["recall"], -l2))
    oof = cv[str(best)]["oof"]
    thr = cv[str(best)]["threshold"]
    thr_alt = pick_threshold(oof, y, ALT_MAX_FP)
    weights, bias = fit([message_counts(d[1]) for d in data], y, best)
    print(f"chosen l2={best}, threshold {thr:.4f} (CV FP<={MAX_FP}), alt threshold {thr_alt:.4f} "
          f"(CV FP<={ALT_MAX_FP}); {len(weights)} weights")
    Path(args.weights).write_text(json.dumps({"bias": bias, "threshold": thr, "threshold_alt": thr_alt,
                                              "window_sentences": WINDOW, "weights": weights},
                                             ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")

    # ---- 2. the test: fresh4, read only now
    test = load_cases(TEST_SPLIT)
    engine = SafetyEngine.from_policy_file(None)
    rule_cats = [set(engine.check_input([{"role": "user", "content": c["text"]}], PROFILE).categories) for c in test]
    results: dict[str, Any] = {}
    for name, t in (("fp2", thr), ("fp5", thr_alt)):
        sc = Scorer(weights, bias, t)
        results[name] = evaluate(test, rule_cats, [sc.fires(c["text"]) for c in test])
    test_scores = {c["id"]: round(Scorer(weights, bias, thr).score(c["text"]), 3) for c in test if is_crisis(c)}

    # ---- 3. run-time cost of the pure-Python scorer (messages built from training texts)
    train_cases = [c for s in ("dev", "heldout") for c in load_cases(s)]
    pools = {lang: [c["text"] for c in train_cases if c["lang"] == lang and not c["labels"]] for lang in ("en", "zh")}
    pools["mixed_labelled"] = [c["text"] for c in train_cases if c["labels"]]
    lat = timing(Scorer(weights, bias, thr), pools)

    out = {
        "train_splits": list(TRAIN_SPLITS), "test_split": TEST_SPLIT, "rules_profile": PROFILE,
        "training": {"messages": len(data), "crisis": sum(y), "other": len(data) - sum(y)},
        "model": {"type": "L2 logistic regression, class-balanced, numpy-trained, pure-Python scorer",
                  "features": "NFKC+lower; per sentence: EN word uni/bigrams + 5-char prefixes, ZH char 1-3-grams; "
                              f"min_df {MIN_DF}; score = max over {WINDOW}-sentence windows",
                  "l2_grid": list(L2_GRID), "l2_chosen": best, "weights": len(weights),
                  "threshold_fp2": thr, "threshold_fp5": thr_alt},
        "cv": {str(l2): {"threshold": v["threshold"], "report": v["report"]} for l2, v in cv.items()},
        "cv_chosen_at_fp5": oof_report(data, oof, thr_alt),
        "fresh4": results,
        "fresh4_crisis_scores": test_scores,
        "scorer_latency_4000_chars": lat,
    }
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    # ---- 4. table
    print(f"\ngrouped CV on training (l2={best}): "
          + ", ".join(f"{g} {r['recall']}" for g, r in cv[str(best)]["report"].items() if r["positives"]))
    for name, label in (("fp2", f"threshold from CV FP<={MAX_FP}"), ("fp5", f"threshold from CV FP<={ALT_MAX_FP}")):
        print(f"\n== fresh4 (test only), model {label} ==")
        print(f"{'system':<16}{'lang':<5}{'recall':>8}{'prec':>7}{'tp/pos':>8}{'benignFP':>10}{'(n)':>8}")
        for system, per in results[name].items():
            for lang in ("all", "en", "zh"):
                r = per[lang]
                print(f"{system:<16}{lang:<5}{r['crisis_recall']:>8.3f}{r['crisis_precision'] or 0:>7.3f}"
                      f"{r['tp']:>4}/{r['tp'] + r['fn']:<3}{r['benign_fp_rate']:>10.3f}{r['benign_fp']:>4}/{r['benign_cases']}")
    print("\nscorer time per 4,000-character message (pure Python):")
    for name, r in lat.items():
        print(f"  {name:<16} p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  (cpu p99 {r['cpu_p99_ms']:.3f} ms)")
    print(f"\nwrote {args.out} and {args.weights}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
