"""AntAngelMed's MTP layer (multi-token prediction) as vLLM's speculative method "mtp", in one place.

- :mod:`.model`: the draft model vLLM builds (``AntAngelMedMTP``, registered lazily by
  ``model_plugin.register``; imports vLLM).
- :mod:`.draft`: the draft config class and the draft directory vLLM is pointed at;
  CLI ``python -m model_plugin.mtp --target DIR --out DRAFT``.
- :mod:`.distill`: CPU distillation of a generated checkpoint's MTP layer from its own main model
  (``python -m model_plugin.checkpoints --distill-mtp``; no vLLM).

Nothing is imported here, so each part costs only its own imports.
"""
