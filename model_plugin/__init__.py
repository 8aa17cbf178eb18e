"""AntAngelMed model plugin for vLLM.

vLLM calls :func:`register` (entry point ``antangelmed`` in ``vllm.general_plugins``) in every process
it starts, so it must stay cheap and re-entrant: model classes are registered as lazy
``"module:Class"`` strings and only imported when vLLM builds the model.
"""

from __future__ import annotations

MODEL_CLASS = "model_plugin.models.antangelmed:AntAngelMedForCausalLM"
MTP_CLASS = "model_plugin.mtp.model:AntAngelMedMTP"
# Our class serves AntAngelMed checkpoints (which say BailingMoeV2ForCausalLM) in place of vLLM's
# built-in; the AntAngelMed name lets a checkpoint opt in explicitly.
ARCHITECTURES = ("BailingMoeV2ForCausalLM", "AntAngelMedForCausalLM")
# The MTP draft (speculative method "mtp"); a draft dir from `python -m model_plugin.mtp` names it.
MTP_ARCHITECTURES: tuple[str, ...] = ("AntAngelMedMTP",)


def register() -> None:
    from vllm import ModelRegistry

    from model_plugin.cpu_placement import place_engine_core

    place_engine_core()
    _register_configs()
    targets = [(arch, MODEL_CLASS) for arch in ARCHITECTURES]
    targets += [(arch, MTP_CLASS) for arch in MTP_ARCHITECTURES]
    for arch, class_path in targets:
        # A second call is a no-op (vLLM would otherwise log an "overwritten" warning every time).
        if not _registered_as(ModelRegistry, arch, class_path):
            ModelRegistry.register_model(arch, class_path)


def _registered_as(registry, arch: str, class_path: str) -> bool:
    """True when ``arch`` already points at our class (a second register() call is then a no-op)."""
    model = registry.models.get(arch)
    module, _, name = class_path.partition(":")
    return getattr(model, "module_name", None) == module and getattr(model, "class_name", None) == name


def _register_configs() -> None:
    from transformers import AutoConfig

    from model_plugin.config import AntAngelMedConfig, AntAngelMedLegacyConfig
    from model_plugin.mtp.draft import AntAngelMedMTPConfig

    for config_class in (AntAngelMedConfig, AntAngelMedLegacyConfig, AntAngelMedMTPConfig):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
