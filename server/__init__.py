"""AntAngelMed gateway: an OpenAI-compatible front door for vLLM with auth, limits, metrics and safety.

This package is the gateway's own slim process: it never imports torch, vLLM or model_plugin.
"""

__version__ = "0.1.0"
