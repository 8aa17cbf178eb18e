"""The MTP draft directory (model_plugin.mtp.draft) and the tensors the MTP model expects, without
an engine: the config vLLM reads, the links to the target's weights, refusals naming the reason."""

import json
import shutil
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from model_plugin.checkpoint_schema import mtp_tensors
from model_plugin.config import AntAngelMedConfig
from model_plugin.mtp.draft import MTPDraftError, write_mtp_draft
from tests.model_plugin.engine.support import REPO
from tests.model_plugin.mtp.conftest import generate


def test_draft_dir_names_our_class_and_links_the_target_weights(mtp_checkpoint, mtp_draft):
    config = json.loads((mtp_draft / "config.json").read_text())
    assert config["model_type"] == "mtp" and config["architectures"] == ["AntAngelMedMTP"]
    assert config["n_predict"] == config["num_nextn_predict_layers"] == 1
    link = mtp_draft / "model.safetensors"
    assert link.is_symlink() and link.resolve() == (mtp_checkpoint / "model.safetensors").resolve()
    target = json.loads((mtp_checkpoint / "config.json").read_text())
    assert {k: v for k, v in config.items() if k not in ("model_type", "architectures", "n_predict")} == {
        k: v for k, v in target.items() if k not in ("model_type", "architectures")
    }


def test_plugin_reads_the_draft_config_as_antangelmed(mtp_draft):
    from transformers import AutoConfig

    import model_plugin
    from model_plugin.mtp.draft import AntAngelMedMTPConfig

    model_plugin.register()
    config = AutoConfig.from_pretrained(mtp_draft)
    assert isinstance(config, AntAngelMedMTPConfig) and config.model_type == "mtp"
    assert config.score_function == "sigmoid" and config.num_nextn_predict_layers == config.n_predict == 1


def test_mtp_schema_matches_the_generated_tensors(mtp_checkpoint):
    config = AntAngelMedConfig.from_pretrained(mtp_checkpoint)
    prefix = f"model.layers.{config.num_hidden_layers}."
    written = {
        n: tuple(t.shape)
        for n, t in load_file(mtp_checkpoint / "model.safetensors").items()
        if n.startswith(prefix)
    }
    assert {n: s.shape for n, s in mtp_tensors(config).items()} == written
    assert {f"{prefix}{n}.weight" for n in ("enorm", "hnorm", "eh_proj", "final_layernorm")} <= set(written)


def test_draft_dir_refuses_a_checkpoint_without_mtp(tmp_path):
    plain = generate(tmp_path / "plain")
    with pytest.raises(MTPDraftError, match="ships no MTP layer"):
        write_mtp_draft(plain, tmp_path / "d1")
    announced = tmp_path / "announced"
    shutil.copytree(plain, announced)
    config = json.loads((announced / "config.json").read_text())
    (announced / "config.json").write_text(json.dumps({**config, "num_nextn_predict_layers": 1}))
    with pytest.raises(MTPDraftError, match="no tensor under them"):
        write_mtp_draft(announced, tmp_path / "d2")
    cli = subprocess.run(
        [sys.executable, "-m", "model_plugin.mtp", "--target", str(plain), "--out", str(tmp_path / "d3")],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2 and "ships no MTP layer" in cli.stderr


def test_draft_dir_of_a_sharded_checkpoint_links_only_the_mtp_shards(tmp_path):
    import dataclasses

    from model_plugin.checkpoints.presets import get_preset
    from model_plugin.checkpoints.writer import write_checkpoint

    preset = dataclasses.replace(get_preset("tiny"), num_nextn_predict_layers=1)
    target = write_checkpoint(preset, tmp_path / "sharded", max_shard_bytes=1 << 20)
    weight_map = json.loads((target / "model.safetensors.index.json").read_text())["weight_map"]
    draft = write_mtp_draft(target, tmp_path / "draft")
    index = json.loads((draft / "model.safetensors.index.json").read_text())["weight_map"]
    prefix = f"model.layers.{preset.num_hidden_layers}."
    assert index == {n: f for n, f in weight_map.items() if n.startswith(prefix)}
    links = {p.name for p in draft.glob("*.safetensors")}
    assert links == set(index.values()) and len(links) < len(set(weight_map.values()))
    assert all((draft / f).resolve() == (target / f).resolve() for f in links)
