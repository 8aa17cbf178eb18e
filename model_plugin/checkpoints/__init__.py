"""Generated AntAngelMed checkpoints: presets, writer (BF16, or the FP8 twin through
``model_plugin.fp8``) and EAGLE3 draft; the MTP layer's distillation is ``model_plugin.mtp.distill``.

Imports only torch, safetensors, tokenizers and the stdlib (usable in an init container
without vLLM). CLI: ``python -m model_plugin.checkpoints --help``.
"""

from model_plugin.fp8 import is_quantizable_linear

from .presets import CONFIG_KEYS, PRESETS, Preset, build_config, get_preset
from .weights import TensorSpec, tensor_specs
from .writer import CheckpointError, write_checkpoint

__all__ = [
    "CONFIG_KEYS",
    "PRESETS",
    "CheckpointError",
    "Preset",
    "TensorSpec",
    "build_config",
    "get_preset",
    "is_quantizable_linear",
    "tensor_specs",
    "write_checkpoint",
]
