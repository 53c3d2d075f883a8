# Inference server image. CPU by default; GPU (CUDA 12 runtime + CuPy) with --build-arg TARGET=gpu.
#   docker build -t pytrt-server .
#   docker build -t pytrt-server:gpu --build-arg TARGET=gpu .
#   docker run -p 8000:8000 -p 8001:8001 -p 8002:8002 -v "$PWD/models:/models" pytrt-server
#   docker run --gpus all ... pytrt-server:gpu
# The image also carries the command-line tools: pytrtexec, pypolygraphy, python -m clients.
ARG TARGET=cpu
ARG CPU_BASE=python:3.11-slim-bookworm
ARG GPU_BASE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

FROM ${CPU_BASE} AS base-cpu
ENV PIP_EXTRA=""

FROM ${GPU_BASE} AS base-gpu
# The distribution's Python; its version follows the base image, so it is not pinned here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_EXTRA="[gpu]" \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Build stage: the virtual environment with the project and its dependencies.
# hadolint ignore=DL3006
FROM base-${TARGET} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY server ./server
COPY clients ./clients
COPY protos ./protos
# The project itself, from this checkout; its dependencies' versions come from pyproject.toml.
# hadolint ignore=DL3013
RUN /opt/venv/bin/pip install ".${PIP_EXTRA}"

# Runtime stage: the environment alone, run as an unprivileged user.
# hadolint ignore=DL3006
FROM base-${TARGET}
LABEL org.opencontainers.image.title="pytrt-server" \
      org.opencontainers.image.description="Inference optimizer and KServe v2 / Triton-protocol server with TensorRT's programming model" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:${PATH}"
COPY --from=venv /opt/venv /opt/venv
RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p /models \
    && chown 10001:10001 /models
USER 10001:10001
WORKDIR /home/app
VOLUME ["/models"]
# 8000 REST (KServe v2), 8001 gRPC, 8002 Prometheus metrics.
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["python3", "-m", "server"]
CMD ["--model-repository", "/models", "--http-port", "8000", "--grpc-port", "8001", "--metrics-port", "8002"]
