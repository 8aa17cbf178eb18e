"""On vLLM's CPU build, run the engine core on the cores its worker computes on.

vLLM binds the worker's OpenMP threads to all cores but one and leaves that one to the engine core. The
engine core then busy-waits (``sched_yield``) for the worker's results for a second after each one, and the
API server, which has to write every streamed token, runs on that same spare core. On a 2-core machine the
API server then often gets the core only when a whole generation is over: a 32-token stream arrives in one
burst after ~110 ms instead of token by token from ~16 ms, and 16 concurrent streams get ~600 content
events/s instead of ~3,100 (``benchmarks/README.md``, "Engine core placement on CPU"). With the engine core
beside its worker (the two take turns: one schedules, the other computes) the spare core is the API
server's.

The worker makes the move because only the worker's environment names its cores (vLLM sets the OpenMP
places when it starts the worker); its parent is the engine core. GPU platforms and ``nobind`` runs are left
alone. ``ANTANGELMED_CPU_ENGINE_CORE=vllm`` keeps vLLM's own placement (measure before choosing it on a
many-core host, where the engine core then shares a compute core).
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Mapping
from pathlib import Path

PLACEMENT_ENV = "ANTANGELMED_CPU_ENGINE_CORE"
PLACEMENTS = ("worker", "vllm")
# vLLM names its first worker process so; with several workers the engine core joins rank 0's cores.
FIRST_WORKER = "VllmWorker-0"
ENGINE_CORE_TITLE = "VLLM::EngineCore"


def placement(environ: Mapping[str, str] = os.environ) -> str:
    """The configured placement; anything else is refused at start with the allowed values."""
    mode = environ.get(PLACEMENT_ENV, "worker").strip().lower()
    if mode not in PLACEMENTS:
        raise ValueError(f"{PLACEMENT_ENV}={mode!r}: expected one of {', '.join(PLACEMENTS)}")
    return mode


def omp_cpus(environ: Mapping[str, str] = os.environ) -> frozenset[int] | None:
    """The CPU ids vLLM bound this worker's OpenMP threads to, in whichever runtime's variable it used
    (``OMP_PLACES={0,1}``, ``GOMP_CPU_AFFINITY=0 1``, ``KMP_AFFINITY=...,proclist=[0,1]``); None when the
    worker is not bound."""
    places = environ.get("OMP_PLACES", "")
    if places.startswith("{") and places.endswith("}"):
        return _ids(places[1:-1].split(","))
    if gomp := environ.get("GOMP_CPU_AFFINITY", "").strip():
        return _ids(gomp.split())
    if found := re.search(r"proclist=\[([^\]]*)\]", environ.get("KMP_AFFINITY", "")):
        return _ids(found.group(1).split(","))
    return None


def _ids(parts: list[str]) -> frozenset[int] | None:
    try:
        ids = frozenset(int(p) for p in parts if p.strip())
    except ValueError:  # a list vLLM did not write (ranges, stride syntax): leave placement alone
        return None
    return ids or None


def place_engine_core() -> bool:
    """From vLLM's first CPU worker, pin its parent engine core's threads to the worker's cores.

    Returns whether it moved the engine core. Called from ``register()`` in every vLLM process; only the
    first worker of a bound CPU run acts.
    """
    if placement() != "worker" or multiprocessing.current_process().name != FIRST_WORKER:
        return False
    cpus = omp_cpus()
    if cpus is None or not _parent_is_engine_core():
        return False
    from vllm.platforms import current_platform  # already imported in a worker

    if not current_platform.is_cpu():
        return False
    _pin_threads(os.getppid(), cpus)
    return True


def _parent_is_engine_core() -> bool:
    try:
        title = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return False
    return title.startswith(ENGINE_CORE_TITLE.encode())


def _pin_threads(pid: int, cpus: frozenset[int]) -> None:
    """Every thread of ``pid`` (affinity is per thread; threads started later inherit their creator's)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
