"""CLI: ``python -m model_plugin.checkpoints --preset NAME --out DIR`` (and ``--eagle3-draft``,
``--distill-mtp``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from model_plugin.fp8 import BLOCK_SIZE

from .presets import PRESETS, get_preset
from .writer import CheckpointError, write_checkpoint

PROG = "antangelmed-checkpoint"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write a generated AntAngelMed (BailingMoeV2) checkpoint, an EAGLE3 draft, or a "
        "copy of a checkpoint with its MTP layer distilled.",
    )
    # Preset is validated by us, not argparse `choices`, so a bad name is one error line.
    parser.add_argument("--preset", help=f"one of: {', '.join(PRESETS)}")
    parser.add_argument("--out", type=Path, required=True, help="output dir (absent or empty)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help="number of decoder layers (default: the preset's; real-shape 4)",
    )
    parser.add_argument(
        "--fp8",
        action="store_true",
        help=f"store linear weights as block-wise float8_e4m3fn ({BLOCK_SIZE[0]}x{BLOCK_SIZE[1]} scales)",
    )
    parser.add_argument(
        "--bigram",
        type=float,
        default=0.0,
        metavar="STRENGTH",
        help="give the random model a learnable next-token habit (e.g. 40) so "
        "speculative drafts reach real acceptance; default 0 (pure random)",
    )
    parser.add_argument("--mtp", action="store_true", help="add one MTP layer (num_nextn_predict_layers: 1)")
    parser.add_argument(
        "--eagle3-draft",
        action="store_true",
        help="write a one-layer EAGLE3 draft for --target instead of a model",
    )
    parser.add_argument(
        "--distill-mtp",
        action="store_true",
        help="copy --target (a checkpoint with an MTP layer, e.g. from --mtp) to --out "
        "with its MTP layer trained on the target's own greedy tokens for "
        "--distill-steps steps (CPU, minutes); other tensors unchanged",
    )
    parser.add_argument(
        "--target", type=Path, help="target checkpoint dir for --eagle3-draft / --distill-mtp"
    )
    parser.add_argument(
        "--draft-vocab",
        type=int,
        default=None,
        help="draft vocabulary size for --eagle3-draft (default 1024)",
    )
    parser.add_argument(
        "--aux-layers",
        default=None,
        metavar="I,J,K",
        help="target layers whose input residual streams the --eagle3-draft reads "
        "(vLLM ids; N = the last layer's output); default (2, N//2, N-3)",
    )
    parser.add_argument(
        "--distill-steps",
        type=int,
        default=0,
        help="train the draft on the target's own aux states and greedy tokens "
        "for this many steps (CPU, minutes); 0 writes random weights. "
        "Required (> 0) with --distill-mtp",
    )
    # The teacher data and unroll of a distillation (EAGLE3 draft or MTP layer); unset = the
    # distiller's defaults.
    parser.add_argument(
        "--distill-prompts",
        type=int,
        default=None,
        metavar="N",
        help="corpus prompts the target continues greedily for the teacher data "
        "(at most the corpus' size less its 8 held-out prompts)",
    )
    parser.add_argument(
        "--distill-gen-tokens",
        type=int,
        default=None,
        metavar="N",
        help="tokens the target generates per continued prompt",
    )
    parser.add_argument(
        "--distill-unroll",
        type=int,
        default=None,
        metavar="K",
        help="speculative steps each training step unrolls (draft positions trained)",
    )
    return parser


def aux_layer_ids(args: argparse.Namespace) -> list[int] | None:
    """--aux-layers "0,3,6" as ints (range and duplicates are checked against the target later)."""
    if args.aux_layers is None:
        return None
    try:
        return [int(part) for part in args.aux_layers.split(",")]
    except ValueError:
        raise CheckpointError(
            f"--aux-layers must be comma-separated integers, got {args.aux_layers!r}"
        ) from None


def distill_options(args: argparse.Namespace) -> dict[str, int]:
    """The --distill-* teacher options that were given, as distiller keyword arguments."""
    given = {
        ("--distill-prompts", "gen_prompts"): args.distill_prompts,
        ("--distill-gen-tokens", "gen_tokens"): args.distill_gen_tokens,
        ("--distill-unroll", "unroll"): args.distill_unroll,
    }
    options = {}
    for (flag, key), value in given.items():
        if value is None:
            continue
        if args.distill_steps <= 0:
            raise CheckpointError(f"{flag} needs --distill-steps N (N > 0)")
        if value < 1:
            raise CheckpointError(f"{flag} must be >= 1")
        options[key] = value
    return options


def run(args: argparse.Namespace) -> Path:
    if args.distill_mtp:
        return _distill_mtp(args)
    if args.eagle3_draft:
        if args.target is None:
            raise CheckpointError("--eagle3-draft needs --target DIR")
        if args.distill_steps > 0:
            from .eagle3_distill import distill_eagle3_draft

            result = distill_eagle3_draft(
                args.target,
                args.out,
                steps=args.distill_steps,
                seed=args.seed,
                draft_vocab_size=args.draft_vocab,
                aux_layer_ids=aux_layer_ids(args),
                log=print,
                **distill_options(args),
            )
            return result.path
        from .eagle3 import write_eagle3_draft

        distill_options(args)  # refuses teacher options without --distill-steps
        return write_eagle3_draft(
            args.target,
            args.out,
            seed=args.seed,
            draft_vocab_size=args.draft_vocab,
            aux_layer_ids=aux_layer_ids(args),
        )
    if args.preset is None:
        raise CheckpointError("one of --preset, --eagle3-draft or --distill-mtp is required")
    try:
        preset = get_preset(args.preset, args.layers)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if args.mtp:
        import dataclasses

        preset = dataclasses.replace(preset, num_nextn_predict_layers=1)
    if args.bigram < 0:
        raise CheckpointError("--bigram must be >= 0")
    return write_checkpoint(preset, args.out, seed=args.seed, fp8=args.fp8, bigram=args.bigram)


def _distill_mtp(args: argparse.Namespace) -> Path:
    if args.eagle3_draft:
        raise CheckpointError("--distill-mtp and --eagle3-draft are exclusive")
    if args.target is None:
        raise CheckpointError("--distill-mtp needs --target DIR (a checkpoint with an MTP layer)")
    ignored = [
        flag
        for flag, value in (
            ("--preset", args.preset),
            ("--layers", args.layers),
            ("--fp8", args.fp8),
            ("--mtp", args.mtp),
            ("--bigram", args.bigram),
            ("--draft-vocab", args.draft_vocab),
            ("--aux-layers", args.aux_layers),
        )
        if value
    ]
    if ignored:
        raise CheckpointError(
            f"{', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not apply "
            "to --distill-mtp (the target's config is kept)"
        )
    if args.distill_steps < 1:
        raise CheckpointError("--distill-mtp needs --distill-steps N (N > 0)")
    from model_plugin.mtp.distill import distill_mtp

    return distill_mtp(
        args.target, args.out, steps=args.distill_steps, seed=args.seed, log=print, **distill_options(args)
    ).path


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
