"""AntAngelMed's MTP layer as a vLLM speculative draft: its config class and draft directory.

Why a draft directory: vLLM 0.32 picks speculative method "mtp" only when the DRAFT config's
``model_type`` is one of its ``MTPModelTypes``, and it turns a target config into a draft config
(``SpeculativeConfig.hf_config_override``) only for built-in model types, so pointing
``--speculative-config`` at an AntAngelMed checkpoint fails with "Unsupported speculative
method: 'mtp'". The generic type ``"mtp"`` is on that list and is never rewritten, so a draft
config with ``model_type: "mtp"`` and ``architectures: ["AntAngelMedMTP"]`` reaches our draft
class through vLLM's ordinary model registry, with no change to vLLM.

The directory this module writes holds that config.json (the target's keys otherwise unchanged)
and relative symlinks to the target's weight shards that contain MTP tensors, so nothing is
copied and the MTP weights are read from the target checkpoint itself::

    python -m model_plugin.mtp --target /models/antangelmed --out /models/antangelmed-mtp
    python -m vllm.entrypoints.openai.api_server --model /models/antangelmed \\
        --speculative-config '{"method": "mtp", "model": "/models/antangelmed-mtp",
                               "num_speculative_tokens": 1}'

The draft shares the target's embedding and lm_head (vLLM's proposer attaches them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from model_plugin import MTP_ARCHITECTURES
from model_plugin.config import AntAngelMedConfig

MTP_MODEL_TYPE = "mtp"  # vLLM's generic MTP draft type (config/speculative.py MTPModelTypes)
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


class MTPDraftError(ValueError):
    """The target checkpoint cannot serve as an MTP draft."""


class AntAngelMedMTPConfig(AntAngelMedConfig):
    """The target's config, read as an MTP draft (registered for model_type "mtp").

    ``n_predict`` is how many MTP blocks the checkpoint has; vLLM reads it to default
    ``num_speculative_tokens`` and requires k to be a multiple of it when k is larger.
    """

    model_type = MTP_MODEL_TYPE

    def __init__(self, n_predict: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_predict = n_predict or self.num_nextn_predict_layers


def mtp_prefixes(config: dict) -> list[str]:
    """``model.layers.{N + k}.`` for each MTP block k of a config.json dict."""
    n_layers = int(config["num_hidden_layers"])
    return [f"model.layers.{n_layers + k}." for k in range(int(config.get("num_nextn_predict_layers") or 0))]


def _tensor_files(target: Path) -> dict[str, str]:
    """Tensor name -> shard file name, from the index or the single safetensors file."""
    index = target / INDEX_FILE
    if index.exists():
        return dict(json.loads(index.read_text())["weight_map"])
    single = target / SINGLE_FILE
    if not single.exists():
        raise MTPDraftError(f"{target} has neither {INDEX_FILE} nor {SINGLE_FILE}")
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as f:
        return {name: SINGLE_FILE for name in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)


def draft_config(config: dict) -> dict:
    """The draft's config.json: the target's, renamed to the MTP draft type and class."""
    n = int(config.get("num_nextn_predict_layers") or 0)
    draft = {k: v for k, v in config.items() if k != "auto_map"}  # never run checkpoint code
    draft.update(model_type=MTP_MODEL_TYPE, architectures=[MTP_ARCHITECTURES[0]], n_predict=n)
    return draft


def write_mtp_draft(target: Path, out: Path) -> Path:
    """Write the draft directory for ``target`` into ``out`` (absent or empty); returns ``out``."""
    target, out = Path(target).resolve(), Path(out).absolute()
    config = json.loads((target / "config.json").read_text())
    prefixes = mtp_prefixes(config)
    if not prefixes:
        raise MTPDraftError(f"{target} ships no MTP layer (num_nextn_predict_layers is 0 or absent)")
    files = _tensor_files(target)
    mtp_names = {name: f for name, f in files.items() if name.startswith(tuple(prefixes))}
    if not mtp_names:
        raise MTPDraftError(
            f"{target}: config.json announces MTP layer(s) {', '.join(prefixes)} "
            "but the checkpoint has no tensor under them"
        )
    if out.exists() and any(out.iterdir()):
        raise MTPDraftError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(draft_config(config), indent=2) + "\n")
    # Only the shards holding MTP tensors are linked, so vLLM reads no more than it needs.
    for shard in sorted(set(mtp_names.values())):
        (out / shard).symlink_to(os.path.relpath(target / shard, out))
    if (target / INDEX_FILE).exists():
        index = {"metadata": {}, "weight_map": dict(sorted(mtp_names.items()))}
        (out / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return out
