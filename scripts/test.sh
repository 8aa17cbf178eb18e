#!/usr/bin/env bash
# Sets up the environment (scripts/setup.sh), checks style (ruff) and runs the whole test suite on CPU.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not vllm"` for the fast tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Style holds itself: lint (line length 110 included) and formatting fail the run like a test does.
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
