"""register(): cheap, re-entrant, lazy; the config class serves both model types without remote code."""

import json
import subprocess
import sys

from tests.model_plugin.engine.support import REPO


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_register_is_reentrant_and_lazy():
    out = _run(
        "import sys, json\n"
        "import model_plugin\n"
        "from vllm import ModelRegistry\n"
        "model_plugin.register(); model_plugin.register()\n"
        "m = ModelRegistry.models\n"
        "archs = model_plugin.ARCHITECTURES + model_plugin.MTP_ARCHITECTURES\n"
        "print(json.dumps({a: [m[a].module_name, m[a].class_name] for a in archs}))\n"
        "lazy = ('model_plugin.models.antangelmed', 'model_plugin.mtp.model')\n"
        "print([name in sys.modules for name in lazy])\n"
    )
    lines = out.strip().splitlines()
    archs = json.loads(lines[-2])
    assert archs == {
        **{
            a: ["model_plugin.models.antangelmed", "AntAngelMedForCausalLM"]
            for a in ("BailingMoeV2ForCausalLM", "AntAngelMedForCausalLM")
        },
        "AntAngelMedMTP": ["model_plugin.mtp.model", "AntAngelMedMTP"],
    }
    # Registering imports neither the model nor the MTP draft (torch/vLLM layers) eagerly.
    assert lines[-1] == "[False, False]"


def test_entry_point_is_declared():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert eps.get("antangelmed") == "model_plugin:register"


def test_config_registered_for_both_model_types_even_with_auto_map(tiny_checkpoint, tmp_path):
    for model_type in ("bailing_moe_v2", "bailing_moe"):
        ckpt = tmp_path / model_type
        ckpt.mkdir()
        config = json.loads((tiny_checkpoint / "config.json").read_text())
        config["model_type"] = model_type
        # auto_map points at a file that does not even exist: it must never be consulted.
        config["auto_map"] = {"AutoConfig": "configuration_missing.Config"}
        (ckpt / "config.json").write_text(json.dumps(config))
        out = _run(
            "import model_plugin; model_plugin._register_configs()\n"
            "from transformers import AutoConfig\n"
            f"c = AutoConfig.from_pretrained({str(ckpt)!r}, trust_remote_code=False)\n"
            "print(type(c).__name__, c.score_function, c.rope_parameters['partial_rotary_factor'])\n"
        )
        assert out.split() == [
            "AntAngelMedConfig" if model_type == "bailing_moe_v2" else "AntAngelMedLegacyConfig",
            "sigmoid",
            "0.5",
        ]
