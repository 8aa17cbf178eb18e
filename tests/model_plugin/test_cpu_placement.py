"""The engine core's CPU placement: which cores a worker names, what the switch accepts, who acts."""

import pytest

from model_plugin import cpu_placement
from model_plugin.cpu_placement import omp_cpus, place_engine_core, placement


@pytest.mark.parametrize(
    ("environ", "cpus"),
    [
        ({"OMP_PLACES": "{0}"}, {0}),
        ({"OMP_PLACES": "{4,5,6,7}"}, {4, 5, 6, 7}),
        ({"GOMP_CPU_AFFINITY": "2 3"}, {2, 3}),
        ({"KMP_AFFINITY": "granularity=fine,explicit,proclist=[1,3]"}, {1, 3}),
    ],
)
def test_omp_cpus_reads_each_runtime_variable(environ, cpus):
    assert omp_cpus(environ) == cpus


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OMP_PLACES": "cores"},
        {"OMP_PLACES": "{0:4}"},
        {"GOMP_CPU_AFFINITY": "0-3"},
        {"OMP_PLACES": "{}"},
    ],
)
def test_omp_cpus_is_none_for_unbound_or_foreign_lists(environ):
    assert omp_cpus(environ) is None


def test_placement_defaults_to_worker_and_refuses_unknown_values():
    assert placement({}) == "worker"
    assert placement({cpu_placement.PLACEMENT_ENV: " VLLM "}) == "vllm"
    with pytest.raises(ValueError, match="expected one of worker, vllm"):
        placement({cpu_placement.PLACEMENT_ENV: "spare"})


def test_only_vllms_first_worker_moves_anything(monkeypatch):
    """This test process is no vLLM worker: nothing is pinned even with an OpenMP list in the environment."""
    monkeypatch.setenv("OMP_PLACES", "{0}")
    moved = []
    monkeypatch.setattr(cpu_placement, "_pin_threads", lambda pid, cpus: moved.append((pid, cpus)))
    assert place_engine_core() is False
    assert moved == []


def test_vllm_placement_leaves_the_engine_core_alone(monkeypatch):
    monkeypatch.setenv(cpu_placement.PLACEMENT_ENV, "vllm")
    monkeypatch.setattr(cpu_placement.multiprocessing.current_process(), "name", cpu_placement.FIRST_WORKER)
    monkeypatch.setattr(cpu_placement, "_pin_threads", lambda pid, cpus: pytest.fail("pinned"))
    assert place_engine_core() is False
