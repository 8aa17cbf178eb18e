"""A copy of a checkpoint that vLLM's *built-in* BailingMoeV2 can load, for side-by-side comparisons.

vLLM's built-in implementation has no config class of its own for this architecture: it needs the
checkpoint to ship one (``auto_map`` + a configuration file, like a hub repo) and
``--trust-remote-code``. The file written here only re-exports our config class, so both
implementations read identical settings. Our plugin ignores ``auto_map``; the optional marker lets a
test prove the file never ran under the plugin.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

CONFIG_FILE = "configuration_bailing_moe_v2.py"
_SOURCE = '''"""Checkpoint-shipped config (comparison copy). Executing it leaves a marker when asked to."""
import os
from pathlib import Path

from model_plugin.config import AntAngelMedConfig

_marker = os.environ.get("ANTANGELMED_REMOTE_CODE_MARKER")
if _marker:
    Path(_marker).write_text("remote code executed")


class BailingMoeV2Config(AntAngelMedConfig):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
'''


def write_builtin_view(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` (weights hard-linked when possible) and add the remote-code config."""
    src, dst = Path(src), Path(dst)
    try:
        shutil.copytree(src, dst, copy_function=_link_or_copy)
    except FileExistsError:
        raise FileExistsError(f"{dst} already exists") from None
    (dst / CONFIG_FILE).write_text(_SOURCE)
    config = json.loads((dst / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": f"{CONFIG_FILE.removesuffix('.py')}.BailingMoeV2Config"}
    (dst / "config.json").unlink()  # it may be a hard link to src's file
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    return dst


def _link_or_copy(s: str, d: str) -> None:
    try:
        Path(d).hardlink_to(s)
    except OSError:
        shutil.copy2(s, d)
