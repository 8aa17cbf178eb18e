"""Fitting one learned detector (sparse numpy, offline only): the training vectors from the run-time
featuriser, class-balanced L2 logistic regression by full-batch Adam, and hard-negative mining for the
max-over-windows score the gateway takes. Used by server/safety/learned/train.py."""

from __future__ import annotations

import numpy as np

from server.safety.learned import model as cm

MIN_DF = 2
AUG_NEG = 1.0  # synthetic negatives per real negative (windows of 2-4 negative segments)
STEPS = 400
MINE_ROUNDS = 3  # hard-negative mining rounds (see fit)
MINE_SAMPLES = 50000
MINE_KEEP = 1000


class Vectors:
    """Each message's features from learned_model.featurise (the run-time featuriser): the message vector
    (buckets, counts) summed over its segments, and each non-empty segment's own vector."""

    def __init__(self, texts: list[str]) -> None:
        self.views = [cm.view_of(t) for t in texts]
        self.docs: list[tuple[np.ndarray, np.ndarray]] = []
        self.segments: list[list[tuple[np.ndarray, np.ndarray]]] = []
        for v in self.views:
            self.docs.append(cm.message_counts(v))
            seg, buckets = cm.featurise(v).pairs()
            self.segments.append([np.unique(buckets[seg == s], return_counts=True) for s in np.unique(seg)])

    def subset(self, idx: list[int]) -> Vectors:
        out = Vectors([])
        out.views = [self.views[i] for i in idx]
        out.docs = [self.docs[i] for i in idx]
        out.segments = [self.segments[i] for i in idx]
        return out


def vector_score(
    weights: np.ndarray, bias: float, segments: list[tuple[np.ndarray, np.ndarray]], window: int = cm.WINDOW
) -> float:
    """A message's score computed from its training vectors (per segment), for checking that the training
    path and the run-time scorer (CategoryModel.score on the text) agree."""
    if not segments:
        return bias
    return bias + cm.window_max(np.array([float(weights[b] @ c) for b, c in segments]), window)


def _total(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    b = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    ub, inv = np.unique(b, return_inverse=True)
    return ub, np.bincount(inv, weights=c).astype(np.int64)


def _augment(
    segments: list[list[tuple[np.ndarray, np.ndarray]]], y: list[int], rng: np.random.Generator, window: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """Synthetic negatives shaped like run-time windows: 2 to WINDOW segments of random negative messages."""
    neg_segs = [s for i, t in enumerate(y) if not t for s in segments[i]]
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(int(AUG_NEG * sum(1 for t in y if not t))):
        k = int(rng.integers(2, window + 1))
        out.append(_total([neg_segs[int(j)] for j in rng.choice(len(neg_segs), size=k, replace=False)]))
    return out, [0] * len(out)


def _sparse(docs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.concatenate([np.full(len(b), r, dtype=np.int64) for r, (b, _) in enumerate(docs)])
    return rows, np.concatenate([b for b, _ in docs]), np.concatenate([c for _, c in docs]).astype(np.float64)


def _train(
    docs: list[tuple[np.ndarray, np.ndarray]], y: list[int], usable: np.ndarray, l2: float
) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression, full-batch Adam, over the buckets marked `usable`."""
    rows, cols, vals = _sparse(docs)
    keep = usable[cols]
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    vocab, cols = np.unique(cols, return_inverse=True)
    d, n = len(vocab), len(docs)
    yv = np.asarray(y, dtype=np.float64)
    pos = yv.sum()
    sw = np.where(yv == 1, n / (2 * pos), n / (2 * (n - pos)))
    w = np.zeros(d)
    b = 0.0
    m_w, v_w, m_b, v_b = np.zeros(d), np.zeros(d), 0.0, 0.0
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    for t in range(1, STEPS + 1):  # full-batch Adam on the weighted log-loss + (l2 / 2n) * |w|^2
        z = np.bincount(rows, weights=vals * w[cols], minlength=n) + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        g = sw * (p - yv) / n
        gw = np.bincount(cols, weights=vals * g[rows], minlength=d) + (l2 / n) * w
        gb = float(g.sum())
        m_w = b1 * m_w + (1 - b1) * gw
        v_w = b2 * v_w + (1 - b2) * gw * gw
        m_b = b1 * m_b + (1 - b1) * gb
        v_b = b2 * v_b + (1 - b2) * gb * gb
        w -= lr * (m_w / (1 - b1**t)) / (np.sqrt(v_w / (1 - b2**t)) + eps)
        b -= lr * (m_b / (1 - b1**t)) / ((v_b / (1 - b2**t)) ** 0.5 + eps)
    dense = np.zeros(cm.SIZE)
    dense[vocab] = w
    return dense, float(b)


def fit(
    docs: list[tuple[np.ndarray, np.ndarray]],
    segments: list[list[tuple[np.ndarray, np.ndarray]]],
    y: list[int],
    l2: float,
    seed: int,
) -> tuple[np.ndarray, float]:
    """The model for these messages; returns (dense weights of learned_model.SIZE, bias).

    Run time takes the max over windows of a long message, so a model that is right about single
    messages can still fire on some window of a long ordinary one. After a first fit, MINE_ROUNDS rounds
    sample MINE_SAMPLES random windows of WINDOW negative segments, add the MINE_KEEP highest-scoring ones
    as negatives, and fit again (hard-negative mining for the max)."""
    rng = np.random.default_rng(seed)
    usable = np.bincount(np.concatenate([b for b, _ in docs]), minlength=cm.SIZE) >= MIN_DF
    # synthetic and mined negatives are windows of 2-WINDOW negative segments whatever the category's own
    # window (for a 1-segment window they teach that ordinary sentences are negative, which is still true)
    aug, aug_y = _augment(segments, y, rng, cm.WINDOW)
    docs, y = docs + aug, list(y) + aug_y
    weights, bias = _train(docs, y, usable, l2)
    neg_segs = [s for segs, t in zip(segments, y) if not t for s in segs]
    if not neg_segs:
        return weights, bias
    srows, scols, svals = _sparse(neg_segs)
    for _ in range(MINE_ROUNDS):
        seg_score = np.bincount(
            srows, weights=svals * weights[scols] * usable[scols], minlength=len(neg_segs)
        )
        picks = rng.integers(0, len(neg_segs), size=(MINE_SAMPLES, cm.WINDOW))
        top = np.argsort(-seg_score[picks].sum(axis=1), kind="stable")[:MINE_KEEP]
        docs = docs + [_total([neg_segs[int(j)] for j in picks[i]]) for i in top]
        y = y + [0] * len(top)
        weights, bias = _train(docs, y, usable, l2)
    return weights, bias


def model_of(
    weights: np.ndarray, bias: float, threshold: float, window: int = cm.WINDOW
) -> cm.CategoryModel:  # one category
    return cm.CategoryModel(weights, bias, threshold, {}, window)
