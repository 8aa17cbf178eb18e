"""Engine runs shared by several test modules (each costs one vLLM start, so run them once)."""

import pytest

from model_plugin.checkpoints.builtin_view import write_builtin_view
from tests.model_plugin.engine.support import MAX_TOKENS, run_probe


@pytest.fixture(scope="session")
def remote_code_checkpoint(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint plus auto_map and a config file, as hub checkpoints ship them."""
    return write_builtin_view(tiny_checkpoint, tmp_path_factory.mktemp("rc") / "tiny-rc")


@pytest.fixture(scope="session")
def plugin_fp32(remote_code_checkpoint, tmp_path_factory):
    """Our plugin, fp32, compiled (vLLM's default), no speculation: the baseline other runs compare to.

    Runs on the auto_map copy WITHOUT trust-remote-code: the plugin's config class must serve it,
    and the marker proves the checkpoint's own code never ran.
    """
    tmp = tmp_path_factory.mktemp("probe")
    marker = tmp / "remote-code-ran"
    out = run_probe(
        remote_code_checkpoint,
        tmp / "plugin-fp32.json",
        extra_args=["--dtype", "float32", "--prompt-logprobs", "5", "--max-tokens", str(MAX_TOKENS)],
        env={"ANTANGELMED_REMOTE_CODE_MARKER": str(marker)},
    )
    out["marker_exists"] = marker.exists()
    return out
