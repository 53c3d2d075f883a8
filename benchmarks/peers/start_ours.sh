#!/usr/bin/env bash
# Start our server on a fresh copy of the example models (HTTP 18000, gRPC 18001).
#   benchmarks/peers/start_ours.sh [MODEL_REPOSITORY]
# OURS_HTTP_PORT / OURS_GRPC_PORT change the ports; OURS_EXTRA_PYTHONPATH puts a folder of
# extra packages first on the path (the what-if run with uvloop + httptools, which uvicorn
# picks up by itself when they import; see docs/benchmarks-server.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=${1:-/tmp/peers/our-models}
[ -d "$REPO/add_sub" ] || .venv/bin/python examples/make_models.py --output "$REPO" >&2
if [ -n "${OURS_EXTRA_PYTHONPATH:-}" ]; then
    export PYTHONPATH="$OURS_EXTRA_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}"
fi
exec .venv/bin/python -m server --model-repository "$REPO" --host 127.0.0.1 \
    --http-port "${OURS_HTTP_PORT:-18000}" --grpc-port "${OURS_GRPC_PORT:-18001}" --metrics-port 0
