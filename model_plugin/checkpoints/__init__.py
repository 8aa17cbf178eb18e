"""Generated AntAngelMed checkpoints: presets, writer, FP8 twin and EAGLE3 draft.

Imports only torch, safetensors, tokenizers and the stdlib (usable in an init container
without vLLM). CLI: ``python -m model_plugin.checkpoints --help``.
"""

from .presets import CONFIG_KEYS, PRESETS, Preset, build_config, get_preset
from .weights import TensorSpec, is_quantizable_linear, tensor_specs
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
