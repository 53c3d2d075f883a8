# Inference server image. CPU by default; GPU with --build-arg TARGET=gpu.
#   docker build -t pytrt-server .
#   docker build -t pytrt-server:gpu --build-arg TARGET=gpu .
#   docker run -p 8000:8000 -p 8001:8001 -p 8002:8002 -v $PWD/models:/models pytrt-server
ARG TARGET=cpu
ARG CPU_BASE=python:3.11-slim-bookworm
ARG GPU_BASE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

FROM ${CPU_BASE} AS base-cpu
ENV PIP_EXTRA=""

FROM ${GPU_BASE} AS base-gpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_EXTRA="[gpu]"

FROM base-${TARGET}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VIRTUAL_ENV=/opt/venv
RUN python3 -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY server ./server
COPY clients ./clients
COPY protos ./protos
RUN pip install --no-cache-dir ".${PIP_EXTRA}"
RUN useradd --create-home --uid 10001 app && mkdir -p /models && chown app /models
USER app
VOLUME ["/models"]
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready').status == 200 else 1)"
ENTRYPOINT ["python3", "-m", "server"]
CMD ["--model-repository", "/models", "--http-port", "8000", "--grpc-port", "8001", "--metrics-port", "8002"]
