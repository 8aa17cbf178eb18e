"""One tiny MTP checkpoint and its draft directory, shared by the draft tests and the engine tests.

The checkpoint has an MTP layer (`--mtp`), the `--bigram 40` next-token habit and an MTP whose
eh_proj passes the next token's embedding straight through (embedding half = identity), so the
MTP predicts the habit's successor and its drafts are accepted often, but not always.
"""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.model_plugin.engine.support import REPO

BIGRAM = 40


def generate(out, *extra: str):
    """`python -m model_plugin.checkpoints --preset tiny` into `out` with `extra` options."""
    subprocess.run(
        [sys.executable, "-m", "model_plugin.checkpoints", "--preset", "tiny", "--out", str(out), *extra],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return out


def give_mtp_a_habit(ckpt):
    """Embedding half of eh_proj := identity, so the block carries token t+1 to the bigram head."""
    config = json.loads((ckpt / "config.json").read_text())
    h, n = config["hidden_size"], config["num_hidden_layers"]
    tensors = load_file(ckpt / "model.safetensors")
    name = f"model.layers.{n}.eh_proj.weight"
    tensors[name][:, :h] = torch.eye(h, dtype=tensors[name].dtype)
    save_file(tensors, ckpt / "model.safetensors", metadata={"format": "pt"})


def write_draft_cli(target, out):
    """The draft directory, written by the CLI (`python -m model_plugin.mtp`)."""
    cmd = [sys.executable, "-m", "model_plugin.mtp", "--target", str(target), "--out", str(out)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def mtp_checkpoint(tmp_path_factory):
    ckpt = generate(tmp_path_factory.mktemp("mtp") / "tiny-mtp", "--mtp", "--bigram", str(BIGRAM))
    give_mtp_a_habit(ckpt)
    return ckpt


@pytest.fixture(scope="session")
def mtp_draft(mtp_checkpoint, tmp_path_factory):
    return write_draft_cli(mtp_checkpoint, tmp_path_factory.mktemp("draft") / "tiny-mtp-draft")
