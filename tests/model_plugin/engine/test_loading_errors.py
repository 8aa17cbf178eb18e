"""A checkpoint that does not match its config fails to load, naming the tensor, in a real vLLM run."""

import shutil

import pytest
from safetensors.torch import load_file, save_file

from tests.model_plugin.engine.support import run_probe

pytestmark = pytest.mark.vllm
LAYER = "model.layers.1"


def _edited_copy(src, dst, edit):
    shutil.copytree(src, dst)
    tensors = load_file(dst / "model.safetensors")
    edit(tensors)
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def _drop(tensors):
    del tensors[f"{LAYER}.mlp.gate.expert_bias"]


def _extra(tensors):
    tensors[f"{LAYER}.attention.rotary_emb.inv_freq"] = tensors[f"{LAYER}.input_layernorm.weight"][:8].clone()


def _misshape(tensors):
    name = f"{LAYER}.mlp.experts.3.down_proj.weight"
    tensors[name] = tensors[name][:, :-1].contiguous()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (_drop, f"missing 1 tensor(s): {LAYER}.mlp.gate.expert_bias"),
        (_extra, f"'{LAYER}.attention.rotary_emb.inv_freq' is not part of this architecture"),
        (_misshape, f"'{LAYER}.mlp.experts.3.down_proj.weight' has shape"),
    ],
    ids=["missing", "extra", "misshapen"],
)
def test_bad_checkpoint_fails_naming_the_tensor(tiny_checkpoint, tmp_path, edit, expected):
    bad = _edited_copy(tiny_checkpoint, tmp_path / "bad", edit)
    with pytest.raises(RuntimeError) as err:
        run_probe(
            bad,
            tmp_path / "out.json",
            prompts=["hello"],
            extra_args=["--enforce-eager", "--max-tokens", "1"],
            timeout=300,
        )
    assert expected in str(err.value)
