#!/usr/bin/env python3
"""Container health probe for the AntAngelMed images (standard library only).

    probe.py URL                       healthy when GET URL answers 2xx
    probe.py --generate BASE --model M healthy when BASE/health is 2xx AND a 1-token completion
                                       for model M succeeds

The second form is the engine's readiness probe: vLLM's /health only says that the engine
process is alive, while a pod should leave the Service's endpoints as soon as it cannot generate.
The probe runs inside the container (exec probe) and only talks to 127.0.0.1. When the engine
guards its API with a key (VLLM_API_KEY in its environment, which exec probes share), the
completion is sent with that key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

# One token of a fixed prompt: the cheapest request that still exercises the scheduler and a
# forward pass. temperature 0 keeps it deterministic and out of any sampling edge case.
_GENERATE_BODY = {"prompt": "ping", "max_tokens": 1, "temperature": 0}


def _get_ok(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300, f"GET {url} -> {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"GET {url} -> {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"GET {url} failed: {exc}"


def _generate_ok(base: str, model: str, timeout: float) -> tuple[bool, str]:
    body = json.dumps({"model": model, **_GENERATE_BODY}).encode()
    headers = {"Content-Type": "application/json"}
    api_key = os.environ.get("VLLM_API_KEY")
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(f"{base}/v1/completions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return False, f"completion -> {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"completion failed: {exc}"
    if not payload.get("choices"):
        return False, "completion returned no choices"
    return True, "completion ok"


def probe(argv: list[str] | None = None) -> int:
    """Run the probe; returns the process exit code (0 healthy, 1 not)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="URL to GET, or the engine's base URL with --generate")
    parser.add_argument("--generate", action="store_true", help="also require a 1-token completion")
    parser.add_argument("--model", default="antangelmed", help="served model name (--generate)")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds per HTTP call")
    args = parser.parse_args(argv)

    if args.generate:
        base = args.url.rstrip("/")
        ok, why = _get_ok(f"{base}/health", args.timeout)
        if ok:
            ok, why = _generate_ok(base, args.model, args.timeout)
    else:
        ok, why = _get_ok(args.url, args.timeout)
    # Kubernetes shows a failing probe's output in the pod's events: keep it one short line.
    if not ok:
        print(why, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(probe())
