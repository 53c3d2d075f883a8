#!/usr/bin/env bash
# Start our server on a fresh copy of the example models (HTTP 18000, gRPC 18001).
#   benchmarks/peers/start_ours.sh [MODEL_REPOSITORY]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=${1:-/tmp/peers/our-models}
[ -d "$REPO/add_sub" ] || .venv/bin/python examples/make_models.py --output "$REPO" >&2
exec .venv/bin/python -m server --model-repository "$REPO" --host 127.0.0.1 \
    --http-port 18000 --grpc-port 18001 --metrics-port 0
