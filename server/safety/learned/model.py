"""Learned detectors for crisis_self_harm, medical_emergency and prompt_injection: hashed n-gram logistic
regressions sharing one featurisation, each OR'd with its category's rules.

The rules (detectors.py) reach their recall goals on the sets they were tuned on but miss new wording; these
models score the same text the rules read (the lower-cased match view, see normalize.py), and the engine adds
a category when its model fires and its rules did not (per profile: `<category>.model` in the policy; a
model-only hit takes `<category>.model_action`, see policy.py). Weights ship as package data
(weights.json, written by train.py next to it); nothing is downloaded at run time.

Features (both languages, hashed into 2**HASH_BITS buckets, counted within a segment):
- the text is cut into segments at sentence ends (. ! ? 。 ！ ？ ； ; newline), at spaces touching a CJK
  character, and every SEGMENT_CAP characters (a run-on message cannot pile up one huge segment);
- English: word unigrams, word bigrams (with a segment-start marker) and 5-character prefixes of words
  longer than 5 (a crude stem); words are runs of [a-z0-9] after apostrophes are dropped ("don't" -> dont);
- Chinese: character 1-, 2- and 3-grams inside runs of CJK ideographs;
- SEGMENT, once per non-empty segment: a learned per-segment offset.
score = bias + the largest sum of segment scores over 1 to WINDOW consecutive non-empty segments: a crisis
sentence counts in full however long the message around it, and cues in neighbouring sentences add up.
Every category has its own weights, bias, segment offset and threshold; LearnedModel keeps the weights as one
[buckets, categories] matrix, so a message is featurised once and one gather per feature kind fetches every
category's weight (~0.1-0.3 ms per 4,000 characters for all three).

`featurise` is the one featuriser: the training script builds its vectors with `message_counts` and
`Features.pairs`, which call it, so training and serving cannot drift apart. Scoring is numpy over code
points (no Python loop per character), except for views of at most SHORT characters, which short.py scores
in plain Python, bit for bit the same (compared in tests). Feature hashing is
plain uint64 arithmetic, so scores do not depend on the process (PYTHONHASHSEED) or the platform.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from server.safety.normalize import match_view, normalize
from server.safety.policy import LEARNED_CATEGORIES, SafetyPolicyError, read_config_text

FORMAT = "antangelmed-learned-safety-model"
WEIGHTS_FILE = "weights.json"
__all__ = [
    "LEARNED_CATEGORIES",
    "CategoryModel",
    "LearnedModel",
    "LearnedModelError",
    "featurise",
    "load_model",
    "message_counts",
    "segment_sums",
    "view_of",
    "window_max",
    "window_max_columns",
]
FEATURISER_VERSION = 1
HASH_BITS = 18
WINDOW = 4  # segments per scoring window
SEGMENT_CAP = 160  # a segment never spans more characters than this
PREFIX = 5  # English prefix feature: the first PREFIX letters of a longer word

_N = 1 << HASH_BITS
NULL = _N  # the bucket of a feature that is not there (its weight is always 0)
SEGMENT = _N + 1  # one per non-empty segment: a learned per-segment offset (longer text is not more risky)
SIZE = _N + 2  # length of the dense weight array
_SHIFT = np.uint64(64 - HASH_BITS)
_GOLD = np.uint64(0x9E3779B97F4A7C15)  # multiplicative (Fibonacci) hashing: top bits of key * _GOLD
_BASE = 0x100000001B3  # polynomial hash of a word's code points, mod 2**64 (odd)
_BASE_INV = pow(_BASE, -1, 1 << 64)
_PAIR = np.uint64(0xC2B2AE3D27D4EB4F)  # combines two word hashes into a bigram key
_START = np.uint64(0x27D4EB2F165667C5)  # the "previous word" of a segment's first word
# CJK keys are exact (code points packed 21 bits apart), so unigram, bigram and trigram keys never coincide;
# word features are 64-bit hashes and take one tag per kind so equal hashes of different kinds part ways
_T_WORD, _T_BIGRAM, _T_PREFIX = (
    np.uint64(0x1F83D9ABFB41BD6B),
    np.uint64(0x5BE0CD19137E2179),
    np.uint64(0x6A09E667F3BCC909),
)
_S21 = np.uint64(21)
_NULL64 = np.int64(NULL)

# character classes over the Basic Multilingual Plane (code points above it count as "other")
_OTHER, _BOUNDARY, _SPACE, _WORD, _CJK = 0, 1, 2, 3, 4
_CLASS = np.zeros(0x10000, dtype=np.uint8)
for _c in " \t\u3000":
    _CLASS[ord(_c)] = _SPACE
for _c in ".!?\n\u3002\uff01\uff1f\uff1b;":
    _CLASS[ord(_c)] = _BOUNDARY
for _lo, _hi in (("a", "z"), ("0", "9")):
    _CLASS[ord(_lo) : ord(_hi) + 1] = _WORD
for _lo, _hi in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)):
    _CLASS[_lo : _hi + 1] = _CJK
_BMP_MAX = np.uint32(0xFFFF)


def _bucket(keys: np.ndarray) -> np.ndarray:
    """uint64 keys -> int64 buckets in [0, 2**HASH_BITS)."""
    return ((keys * _GOLD) >> _SHIFT).view(np.int64)


# a CJK character's unigram bucket, NULL for every other character: one table look-up per character
_UNIGRAM = np.where(_CLASS == _CJK, _bucket(np.arange(0x10000, dtype=np.uint64)), _NULL64)


class LearnedModelError(SafetyPolicyError):
    """The learned model's weights cannot be used; the message names the problem in one line."""


class _Powers:
    """BASE**j and BASE**-j mod 2**64 for j < len, grown on demand (words hash by prefix sums).

    The pair is one attribute, replaced whole and only by a longer one, so a reader in any thread gets a
    consistent pair at least as long as it asked for."""

    def __init__(self) -> None:
        one = np.ones(1, dtype=np.uint64)
        self.pair = (one, one)
        self._lock = threading.Lock()
        self.get(8192)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        pair = self.pair
        if len(pair[0]) >= n:
            return pair
        with self._lock:
            fwd, inv = self.pair
            while len(fwd) < n:
                k = len(fwd)
                step_f = np.uint64(pow(_BASE, k, 1 << 64))
                step_i = np.uint64(pow(_BASE_INV, k, 1 << 64))
                fwd = np.concatenate([fwd, fwd * step_f])  # uint64 arrays wrap mod 2**64
                inv = np.concatenate([inv, inv * step_i])
            self.pair = (fwd, inv)
            return self.pair


_POWERS = _Powers()


def view_of(text: str) -> str:
    """The text as the rules read it: normalised, lower-cased, look-alikes folded, Traditional Chinese read
    as Simplified."""
    return match_view(normalize(text))


@dataclass(frozen=True)
class Features:
    """A message's features, grouped as the scorer consumes them.

    `cjk` holds the unigram, bigram and trigram buckets of CJK characters, one per starting position
    (lengths n, n-1, n-2; NULL where there is no such n-gram), attributed to segment `seg[position]`;
    `words` holds the unigram, bigram and prefix buckets per word, attributed to `word_seg`;
    `nonempty` lists, in order, the segments with at least one word or CJK character.
    """

    seg: np.ndarray
    cjk: tuple[np.ndarray, ...]
    word_seg: np.ndarray
    words: tuple[np.ndarray, ...]
    nonempty: np.ndarray

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(segment, bucket) of every present feature (SEGMENT once per non-empty segment), NULL dropped."""
        n = len(self.seg)
        segs = [self.seg[: n - k] for k in range(len(self.cjk))] + [self.word_seg] * len(self.words)
        buckets = [*self.cjk, *self.words]
        segs.append(self.nonempty)
        buckets.append(np.full(len(self.nonempty), SEGMENT, dtype=np.int64))
        s, b = np.concatenate(segs), np.concatenate(buckets)
        keep = b != NULL
        return s[keep], b[keep]


_EMPTY = np.zeros(0, dtype=np.int64)
# views of at most SHORT characters (a chat question) are scored in plain Python (short.py), the faster path
# there (measured both ways)
SHORT = 64


def featurise(view: str) -> Features:
    """The features of a match view (see view_of): the one featuriser of training and serving."""
    cp = np.frombuffer(view.replace("'", "").encode("utf-32-le"), dtype=np.uint32)
    n = len(cp)
    if n == 0:
        return Features(_EMPTY, (), _EMPTY, (), _EMPTY)
    bmp = np.minimum(cp, _BMP_MAX)
    cls = _CLASS[bmp]
    boundary = cls == _BOUNDARY
    is_cjk = cls == _CJK
    any_cjk = bool(is_cjk.any())
    if any_cjk:  # in Chinese text a space separates phrases: cut where one touches a CJK character
        space = cls == _SPACE
        if space.any():
            near = np.zeros(n, dtype=bool)
            near[1:] |= is_cjk[:-1]
            near[:-1] |= is_cjk[1:]
            boundary |= space & near
    if n > SEGMENT_CAP:
        cuts = np.flatnonzero(boundary)
        if (
            len(cuts) == 0
            or cuts[0] >= SEGMENT_CAP
            or n - cuts[-1] > SEGMENT_CAP
            or (len(cuts) > 1 and np.diff(cuts).max() > SEGMENT_CAP)
        ):
            # a segment longer than SEGMENT_CAP: also cut every SEGMENT_CAP characters since the last cut
            idx = np.arange(n)
            last = np.maximum.accumulate(np.where(boundary, idx, -1))
            boundary = boundary | ((idx - last) % SEGMENT_CAP == 0)
    seg = np.cumsum(boundary)
    nonempty = np.flatnonzero(np.bincount(seg[cls >= _WORD]))

    cjk: tuple[np.ndarray, ...] = ()
    if any_cjk:
        uni = _UNIGRAM[bmp]
        if n >= 3:
            c = cp.astype(np.uint64)
            two = is_cjk[:-1] & is_cjk[1:]
            k2 = (c[:-1] << _S21) | c[1:]
            k3 = (k2[:-1] << _S21) | c[2:]
            cjk = (
                uni,
                np.where(two, _bucket(k2), _NULL64),
                np.where(two[:-1] & is_cjk[2:], _bucket(k3), _NULL64),
            )
        elif n == 2:
            c = cp.astype(np.uint64)
            k2 = (c[:-1] << _S21) | c[1:]
            cjk = (uni, np.where(is_cjk[:-1] & is_cjk[1:], _bucket(k2), _NULL64))
        else:
            cjk = (uni,)

    word_seg, words = _EMPTY, ()
    pos = np.flatnonzero(cls == _WORD)  # words are hashed on the word characters alone (few in Chinese text)
    m = len(pos)
    if m:
        cut = np.flatnonzero(np.diff(pos) != 1) + 1
        starts = np.concatenate([[0], cut])
        ends = np.concatenate([cut, [m]])
        fwd, inv = _POWERS.get(m + 1)
        prefix = np.zeros(m + 1, dtype=np.uint64)
        np.cumsum(cp[pos] * fwd[:m], out=prefix[1:])  # sum of cp[j] * BASE**j, mod 2**64
        unshift = inv[starts]
        h = (prefix[ends] - prefix[starts]) * unshift  # the word's own hash, position-free
        word_seg = seg[pos[starts]]
        prev = np.empty_like(h)
        prev[0] = _START
        prev[1:] = h[:-1]
        prev[1:][word_seg[1:] != word_seg[:-1]] = _START  # a segment's first word follows _START
        hp = (prefix[np.minimum(starts + PREFIX, m)] - prefix[starts]) * unshift
        words = (
            _bucket(h ^ _T_WORD),
            _bucket((prev * _PAIR + h) ^ _T_BIGRAM),
            np.where(ends - starts > PREFIX, _bucket(hp ^ _T_PREFIX), _NULL64),
        )
    return Features(seg, cjk, word_seg, words, nonempty)


def message_counts(view: str) -> tuple[np.ndarray, np.ndarray]:
    """Training view of a message: (buckets, counts) summed over all its segments.

    For a message of at most WINDOW non-empty segments, bias + sum(weights[buckets] * counts) is exactly
    what `CategoryModel.score` computes on it (up to float rounding)."""
    _, buckets = featurise(view).pairs()
    return np.unique(buckets, return_counts=True)


def window_max(sums: np.ndarray, window: int = WINDOW) -> float:
    """The largest sum over 1 to `window` consecutive entries: a crisis sentence counts in full however much
    ordinary text surrounds it, and cues in neighbouring sentences add up."""
    n = len(sums)
    run = np.zeros(n + 1)
    np.cumsum(sums, out=run[1:])
    best = float(sums.max())
    for k in range(2, min(window, n) + 1):
        best = max(best, float((run[k:] - run[:-k]).max()))
    return best


def window_max_columns(sums: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """window_max of each column of a [segments, categories] array, column j over 1 to windows[j] entries."""
    n = len(sums)
    run = np.zeros((n + 1, sums.shape[1]))
    np.cumsum(sums, axis=0, out=run[1:])
    best = sums.max(axis=0)
    for k in range(2, min(int(windows.max()), n) + 1):
        best = np.where(windows >= k, np.maximum(best, (run[k:] - run[:-k]).max(axis=0)), best)
    return best


def segment_sums(f: Features, weights: np.ndarray) -> np.ndarray:
    """Each non-empty segment's summed weights plus the SEGMENT offset: [segments] for one category's
    weights [SIZE], [segments, categories] for a weight matrix [SIZE, categories] (one gather per feature
    kind fetches every category). `f` must have at least one non-empty segment."""
    size = int(f.seg[-1]) + 1  # segments are numbered in order: the last character's is the largest
    sums = np.zeros((size, *weights.shape[1:]))
    # positions are in segment order: each segment's sum is one reduceat run
    if f.cjk:
        contrib = weights.take(f.cjk[0], axis=0)
        for j in range(1, len(f.cjk)):
            contrib[:-j] += weights.take(f.cjk[j], axis=0)
        # every segment number from seg[0] on has a character (the boundary that opened it)
        starts = np.concatenate(([0], np.flatnonzero(np.diff(f.seg)) + 1))
        sums[f.seg[0] :] = np.add.reduceat(contrib, starts, axis=0)
    if f.words:
        contrib = (
            weights.take(f.words[0], axis=0)
            + weights.take(f.words[1], axis=0)
            + weights.take(f.words[2], axis=0)
        )
        starts = np.concatenate(([0], np.flatnonzero(np.diff(f.word_seg)) + 1))
        sums[f.word_seg[starts]] += np.add.reduceat(contrib, starts, axis=0)
    return sums[f.nonempty] + weights[SEGMENT]


@dataclass(frozen=True)
class CategoryModel:
    """One category's scorer (training and tests; the engine uses LearnedModel, every category at once):
    a dense weight array over the hash buckets, NULL (always 0) and SEGMENT."""

    weights: np.ndarray
    bias: float
    threshold: float
    meta: dict[str, Any]
    window: int = WINDOW  # segments per scoring window (1: a single sentence; cues do not add up across them)

    def score(self, view: str) -> float:
        """The model's score for a match view (see view_of); fires at >= threshold."""
        f = featurise(view)
        if len(f.nonempty) == 0:
            return self.bias
        return self.bias + window_max(segment_sums(f, self.weights), self.window)

    def fires(self, view: str) -> bool:
        return self.score(view) >= self.threshold


def _category_from_dict(data: Any, source: str) -> tuple[np.ndarray, float, float, dict[str, Any], int]:
    """One category's (dense weights, bias, threshold, meta, window); LearnedModelError names any problem."""
    if not isinstance(data, dict):
        raise LearnedModelError(f"{source}: expected a JSON object, got {type(data).__name__}")
    window = data.get("window_segments", WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= WINDOW:
        raise LearnedModelError(
            f"{source}: window_segments must be an integer from 1 to {WINDOW} (got {window!r})"
        )
    for key in ("bias", "threshold"):
        if (
            not isinstance(data.get(key), (int, float))
            or isinstance(data.get(key), bool)
            or not math.isfinite(data[key])
        ):
            raise LearnedModelError(f"{source}: {key} must be a finite number (got {data.get(key)!r})")
    buckets, weights = data.get("buckets"), data.get("weights")
    if not isinstance(buckets, list) or not isinstance(weights, list) or len(buckets) != len(weights):
        raise LearnedModelError(f"{source}: buckets and weights must be lists of the same length")
    try:
        b = np.asarray(buckets, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise LearnedModelError(f"{source}: buckets must be integers and weights numbers") from None
    if b.ndim != 1 or w.ndim != 1 or (len(b) and (b.min() < 0 or b.max() >= SIZE or (b == NULL).any())):
        raise LearnedModelError(f"{source}: buckets must be integers in [0, {SIZE}) other than {NULL}")
    if len(np.unique(b)) != len(b):
        raise LearnedModelError(f"{source}: a bucket appears twice")
    if not np.isfinite(w).all():
        raise LearnedModelError(f"{source}: weights must be finite numbers")
    dense = np.zeros(SIZE, dtype=np.float64)
    dense[b] = w
    meta = data.get("trained") if isinstance(data.get("trained"), dict) else {}
    return dense, float(data["bias"]), float(data["threshold"]), meta, window


def _veto_from_dict(data: dict[str, Any], threshold: float, source: str) -> float | None:
    veto = data.get("veto_below")
    if veto is None:
        return None
    number = isinstance(veto, (int, float)) and not isinstance(veto, bool)
    if not number or not math.isfinite(veto) or veto > threshold:
        raise LearnedModelError(f"{source}: veto_below must be a number at most the threshold (got {veto!r})")
    return float(veto)


@dataclass(frozen=True)
class LearnedModel:
    """The run-time scorer of every learned category at once: one featurisation per message, then a weight
    matrix [SIZE, categories] (NULL's row always 0), a bias, threshold and segment offset (the SEGMENT row)
    per category. `scores(view)[k]` equals `category(name).score(view)` (the single-category scorer the
    training script uses) up to float rounding."""

    categories: tuple[str, ...]
    weights: np.ndarray  # [SIZE, len(categories)], C order: one gather fetches every category's weight
    bias: np.ndarray  # [len(categories)]
    threshold: np.ndarray  # [len(categories)]
    meta: dict[str, Any]  # category -> its training record
    windows: np.ndarray  # [len(categories)]: segments per scoring window, 1 to WINDOW
    # per category: a rule hit scored below this is vetoed (None: never); see train.py's MAX_VETO_LOSS
    vetoes: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        from server.safety.learned.short import ShortScorer  # it reads this module's tables

        object.__setattr__(self, "_short", ShortScorer(self.weights, self.bias, self.windows))
        object.__setattr__(self, "_thresholds", [float(t) for t in self.threshold])

    def scores(self, view: str) -> np.ndarray:
        """Every category's score for a match view (see view_of), in `categories` order."""
        if len(view) <= SHORT:
            return np.array(self._short.scores(view))
        f = featurise(view)
        if len(f.nonempty) == 0:
            return self.bias.copy()
        return self.bias + window_max_columns(segment_sums(f, self.weights), self.windows)

    def score_list(self, view: str) -> list[float]:
        """`scores` as a list of floats."""
        return self._short.scores(view) if len(view) <= SHORT else self.scores(view).tolist()

    def fired(self, view: str, scores: list[float] | None = None) -> list[str]:
        """The categories whose score reaches their threshold (`scores`: score_list(view), if computed)."""
        scores = self.score_list(view) if scores is None else scores
        return [c for c, x, t in zip(self.categories, scores, self._thresholds) if x >= t]

    def vetoed(self, categories: set[str], scores: list[float]) -> set[str]:
        """Which of `categories`, raised by rules on a text with these scores, the model vetoes."""
        return {
            c
            for c, x, v in zip(self.categories, scores, self.vetoes)
            if c in categories and v is not None and x < v
        }

    def category(self, name: str) -> CategoryModel:
        """One category as a single-category scorer (its own copy of the weights)."""
        j = self.categories.index(name)
        return CategoryModel(
            np.ascontiguousarray(self.weights[:, j]),
            float(self.bias[j]),
            float(self.threshold[j]),
            self.meta.get(name, {}),
            int(self.windows[j]),
        )

    @classmethod
    def from_dict(cls, data: Any, source: str = "learned model") -> LearnedModel:
        """Validate and build; LearnedModelError names any problem in one line."""
        if not isinstance(data, dict):
            raise LearnedModelError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise LearnedModelError(
                f"{source}: not a learned safety model file (format {data.get('format')!r}, "
                f"expected {FORMAT!r})"
            )
        feat = data.get("featuriser")
        want = {
            "version": FEATURISER_VERSION,
            "hash_bits": HASH_BITS,
            "window_segments": WINDOW,
            "segment_cap_chars": SEGMENT_CAP,
            "prefix_chars": PREFIX,
        }
        if not isinstance(feat, dict) or any(feat.get(k) != v for k, v in want.items()):
            raise LearnedModelError(
                f"{source}: written for another featuriser ({feat!r}); this code has {want} "
                "- retrain with python -m server.safety.learned.train"
            )
        cats = data.get("categories")
        if not isinstance(cats, dict) or not cats:
            raise LearnedModelError(f"{source}: categories must be a non-empty object (category -> weights)")
        for name in cats:
            if name not in LEARNED_CATEGORIES:
                raise LearnedModelError(
                    f"{source}: unknown category {name!r} (expected one of: {', '.join(LEARNED_CATEGORIES)})"
                )
        names = tuple(c for c in LEARNED_CATEGORIES if c in cats)
        parts = [_category_from_dict(cats[c], f"{source}: {c}") for c in names]
        weights = np.ascontiguousarray(np.stack([p[0] for p in parts], axis=1))
        vetoes = tuple(_veto_from_dict(cats[c], p[2], f"{source}: {c}") for c, p in zip(names, parts))
        return cls(
            names,
            weights,
            np.array([p[1] for p in parts]),
            np.array([p[2] for p in parts]),
            {c: p[3] for c, p in zip(names, parts)},
            np.array([p[4] for p in parts]),
            vetoes,
        )

    @classmethod
    def load(cls, path: str | None = None) -> LearnedModel:
        """The shipped weights (None) or the file at `path`; LearnedModelError names any problem."""
        source = path or f"built-in learned model (server/safety/learned/{WEIGHTS_FILE})"
        if path is not None:
            text = read_config_text(path, source, LearnedModelError)
        else:
            try:
                text = (
                    resources.files("server.safety.learned")
                    .joinpath(WEIGHTS_FILE)
                    .read_text(encoding="utf-8")
                )
            except OSError as exc:
                raise LearnedModelError(f"cannot read {source}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LearnedModelError(
                f"{source} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        return cls.from_dict(data, source)


_CACHE: dict[str | None, LearnedModel] = {}


def load_model(path: str | None = None) -> LearnedModel:
    """Loaded once per process and path (engines share the read-only weights)."""
    model = _CACHE.get(path)
    if model is None:
        model = _CACHE[path] = LearnedModel.load(path)
    return model
