"""CLI: ``python -m model_plugin.checkpoints --preset NAME --out DIR`` (and ``--eagle3-draft``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .presets import PRESETS, get_preset
from .writer import CheckpointError, write_checkpoint

PROG = "antangelmed-checkpoint"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write a generated AntAngelMed (BailingMoeV2) checkpoint or an EAGLE3 draft.",
    )
    # Preset is validated by us, not argparse `choices`, so a bad name is one error line.
    parser.add_argument("--preset", help=f"one of: {', '.join(PRESETS)}")
    parser.add_argument("--out", type=Path, required=True, help="output dir (absent or empty)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    parser.add_argument("--layers", type=int, default=None,
                        help="number of decoder layers (default: the preset's; real-shape 4)")
    parser.add_argument("--fp8", action="store_true",
                        help="store linear weights as block-wise float8_e4m3fn (128x128 scales)")
    parser.add_argument("--mtp", action="store_true",
                        help="add one MTP layer (num_nextn_predict_layers: 1)")
    parser.add_argument("--eagle3-draft", action="store_true",
                        help="write a one-layer EAGLE3 draft for --target instead of a model")
    parser.add_argument("--target", type=Path, help="target checkpoint dir for --eagle3-draft")
    return parser


def run(args: argparse.Namespace) -> Path:
    if args.eagle3_draft:
        if args.target is None:
            raise CheckpointError("--eagle3-draft needs --target DIR")
        from .eagle3 import write_eagle3_draft

        return write_eagle3_draft(args.target, args.out, seed=args.seed)
    if args.preset is None:
        raise CheckpointError("one of --preset or --eagle3-draft is required")
    try:
        preset = get_preset(args.preset, args.layers)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if args.mtp:
        import dataclasses

        preset = dataclasses.replace(preset, num_nextn_predict_layers=1)
    return write_checkpoint(preset, args.out, seed=args.seed, fp8=args.fp8)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.monotonic()
    try:
        path = run(args)
    except CheckpointError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} in {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
