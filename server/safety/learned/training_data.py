"""What the learned detectors are trained on (server/safety/learned/train.py): the labelled sets in
TRAIN_SPLITS, the two corpora and the writers' messages in data/, each message with the cross-validation
group it belongs to and the categories it trains. Nothing else is read: a blind set kept UNTUNED stays
unseen by everything that picks a setting."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from benchmarks.safety_eval import load_cases
from server.safety.learned import model as cm

CRISIS, EMERGENCY, INJECTION = cm.LEARNED_CATEGORIES
TRAIN_SPLITS = (
    "dev",
    "heldout",
    "fresh",
    "fresh2",
    "fresh3",
    "fresh4",
    "fresh5",
    "fresh6",
    "fresh7",
    "probes",
)
DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "crisis_corpus.jsonl"
EI_CORPUS = DATA / "emergency_injection_corpus.jsonl"
# messages from independent writers (each briefed on a voice and dimensions, none shown the rules), labelled
# for all three categories; each writer's messages form one cross-validation group
WRITERS = DATA / "writers"


def labels_of(case: dict[str, Any]) -> set[str]:
    out = set(case.get("labels", []))
    if case.get("expect"):
        out.add(case["expect"])
    return out


def group_of(split: str, case: dict[str, Any]) -> str:
    if split != "probes":
        return split
    rnd = int(re.match(r"probe(\d+)-", case["id"]).group(1))
    return "probes1-4" if rnd <= 4 else "probes5-8" if rnd <= 8 else "probes9+"


def _corpus_rows(path: Path, key: str, kind: type, shape: str) -> list[dict[str, Any]]:
    """The rows of a training corpus (JSONL; none if the file is absent), each with its line number as
    `_line`; a row without a string `text` or with `key` not of `kind` stops the script naming the line."""
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row.get("text"), str) or not isinstance(row.get(key), kind):
                raise SystemExit(f"{path}:{n}: expected {shape}")
            rows.append({**row, "_line": n})
    return rows


def load_training() -> list[dict[str, Any]]:
    """Every training message: {group, id, lang, text, labels, cats}. `cats`: the categories the message
    trains (as a positive or a negative): every category for the labelled sets; crisis only for the crisis
    corpus (it carries no emergency/injection labels: an overdose there may well be an emergency), emergency
    and injection only for their corpus (no crisis labels); every category for the writers' messages. Reads
    only TRAIN_SPLITS and the corpora."""
    data: list[dict[str, Any]] = []
    for split in TRAIN_SPLITS:
        for case in load_cases(split):
            data.append(
                {
                    "group": group_of(split, case),
                    "id": case["id"],
                    "lang": case["lang"],
                    "text": case["text"],
                    "labels": labels_of(case),
                    "cats": set(cm.LEARNED_CATEGORIES),
                }
            )
    for row in _corpus_rows(CORPUS, "crisis", bool, "{id, lang, crisis: bool, text}"):
        data.append(
            {
                "group": "crisis_corpus",
                "id": row.get("id", f"corpus-{row['_line']}"),
                "lang": row.get("lang", "?"),
                "text": row["text"],
                "labels": {CRISIS} if row["crisis"] else set(),
                "cats": {CRISIS},
            }
        )
    for row in _corpus_rows(EI_CORPUS, "labels", list, "{id, lang, labels: [...], text}"):
        data.append(
            {
                "group": "emergency_injection_corpus",
                "id": row.get("id", f"ei-corpus-{row['_line']}"),
                "lang": row.get("lang", "?"),
                "text": row["text"],
                "labels": set(row["labels"]),
                "cats": {EMERGENCY, INJECTION},
            }
        )
    for path in sorted(WRITERS.glob("*.jsonl")):
        for row in _corpus_rows(path, "labels", list, "{id, writer, lang, labels: [...], text}"):
            data.append(
                {
                    "group": f"writer:{row.get('writer', path.stem)}",
                    "id": row.get("id", f"{path.stem}-{row['_line']}"),
                    "lang": row.get("lang", "?"),
                    "text": row["text"],
                    "labels": set(row["labels"]) & set(cm.LEARNED_CATEGORIES),
                    "cats": set(cm.LEARNED_CATEGORIES),
                }
            )
    return data
