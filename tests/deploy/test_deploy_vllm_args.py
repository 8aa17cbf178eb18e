"""Every overlay's engine arguments are accepted by the pinned vLLM's own `serve` argument parser.

The GPU overlays cannot start an engine here (no GPU), but their command lines can still be
checked by the code that will read them: vLLM's parser (make_arg_parser, the one behind both
`vllm serve` and the OpenAI server module) and its pre-load validation, in a subprocess with the
installed vLLM. A misspelt flag, a malformed --speculative-config or a removed option fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.deploy.deploy_helpers import OVERLAYS, Obj, one

# Runs in a child process: importing vLLM takes seconds and must not leak into the test process.
_PARSE = """
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.utils.argparse_utils import FlexibleArgumentParser
out = {}
for name, argv in json.load(sys.stdin).items():
    parser = make_arg_parser(FlexibleArgumentParser())
    try:
        args = parser.parse_args(argv)
        validate_parsed_serve_args(args)
    except SystemExit as exc:
        out[name] = {"error": exc.code}
        continue
    keys = ("model_tag", "model", "served_model_name", "host", "port", "tensor_parallel_size",
            "speculative_config", "max_model_len", "gpu_memory_utilization", "enforce_eager",
            "trust_remote_code", "shutdown_timeout", "enable_auto_tool_choice", "tool_call_parser")
    out[name] = {k: getattr(args, k, None) for k in keys}
    if args.tool_call_parser:  # a name vLLM's tool-parser registry resolves
        from vllm.tool_parsers import ToolParserManager
        parser_cls = ToolParserManager.get_tool_parser(args.tool_call_parser)
        out[name]["tool_call_parser_class"] = parser_cls.__name__
print("PARSED" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def parsed(rendered: dict[str, list[Obj]]) -> dict[str, dict]:
    pytest.importorskip("vllm", reason="vLLM is not installed here: its argument parser is needed")
    argvs = {}
    for overlay in OVERLAYS:
        engine = one(rendered[overlay], "Deployment", "antangelmed-engine")["spec"]["template"]["spec"]
        argvs[overlay] = engine["containers"][0]["args"]
    argvs["misspelt"] = ["/models/x", "--tensor-paralel-size=1"]
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PARSED")), None)
    assert line is not None, proc.stderr[-4000:]
    return json.loads(line.removeprefix("PARSED"))


def test_parser_rejects_a_misspelt_flag(parsed: dict[str, dict]) -> None:
    assert parsed["misspelt"] == {"error": 2}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_engine_args_accepted_by_vllm(
    parsed: dict[str, dict], rendered: dict[str, list[Obj]], overlay: str
) -> None:
    args = parsed[overlay]
    assert "error" not in args, args
    assert args["served_model_name"] == ["antangelmed"]
    assert args["port"] == 8000 and args["host"] == "0.0.0.0"
    assert args["trust_remote_code"] is False
    spec = one(rendered[overlay], "Deployment", "antangelmed-engine")["spec"]["template"]["spec"]
    # vLLM drains in-flight requests for shutdown_timeout; Kubernetes must wait at least that long.
    assert 0 < args["shutdown_timeout"] < spec["terminationGracePeriodSeconds"]
    # Tool calling: the parser that reads AntAngelMed's Hermes-style <tool_call> JSON
    # (tests/model_plugin/checkpoints/test_chat_template_tools.py).
    assert args["enable_auto_tool_choice"] is True and args["tool_call_parser"] == "hermes"
    assert args["tool_call_parser_class"] == "Hermes2ProToolParser"


def test_parsed_engine_flavours(parsed: dict[str, dict]) -> None:
    fp8 = parsed["h200-fp8-eagle3"]
    assert fp8["model_tag"] == "/models/AntAngelMed-FP8" and fp8["tensor_parallel_size"] == 1
    assert fp8["speculative_config"] == {
        "method": "eagle3",
        "model": "/models/eagle3-draft",
        "num_speculative_tokens": 4,
    }
    assert fp8["max_model_len"] == 32768 and fp8["gpu_memory_utilization"] == 0.92
    assert parsed["production"] == fp8
    bf16 = parsed["bf16-tp4"]
    assert bf16["model_tag"] == "/models/AntAngelMed" and bf16["tensor_parallel_size"] == 4
    assert bf16["speculative_config"] is None
    cpu = parsed["cpu-demo"]
    assert cpu["model"] == "/models/tiny" and cpu["enforce_eager"] is True
