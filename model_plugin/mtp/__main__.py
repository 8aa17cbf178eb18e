"""CLI: ``python -m model_plugin.mtp --target DIR --out DRAFT`` writes the MTP draft directory of a
checkpoint that ships MTP weights (see :mod:`model_plugin.mtp.draft`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .draft import MTPDraftError, write_mtp_draft

PROG = "python -m model_plugin.mtp"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write a vLLM MTP draft directory for an AntAngelMed checkpoint that ships MTP weights.",
    )
    parser.add_argument("--target", type=Path, required=True, help="the target checkpoint dir")
    parser.add_argument("--out", type=Path, required=True, help="draft dir to write (absent or empty)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = write_mtp_draft(args.target, args.out)
    except (MTPDraftError, OSError, KeyError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote MTP draft {out}; use --speculative-config "
        f'\'{{"method": "mtp", "model": "{out}", "num_speculative_tokens": 1}}\''
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
