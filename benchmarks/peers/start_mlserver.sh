#!/usr/bin/env bash
# Start MLServer 1.7.1 on the add_sub custom runtime (HTTP 18080, gRPC 18081, metrics 18082).
#   MLSERVER_VENV=/tmp/peers/mlserver-venv benchmarks/peers/start_mlserver.sh
# Setup (outside the repository):
#   python3.11 -m venv /tmp/peers/mlserver-venv && /tmp/peers/mlserver-venv/bin/pip install mlserver==1.7.1
# MLSERVER_PARALLEL_WORKERS (MLServer's own setting; its default is 1 worker process, 0 runs
# inference inside the server process) may be set by the caller.
set -euo pipefail
cd "$(dirname "$0")/mlserver_models"
VENV=${MLSERVER_VENV:-/tmp/peers/mlserver-venv}
exec "$VENV/bin/mlserver" start .
