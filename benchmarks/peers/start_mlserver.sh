#!/usr/bin/env bash
# Start MLServer 1.7.1 on the add_sub custom runtime (HTTP 18080, gRPC 18081, metrics 18082).
#   MLSERVER_VENV=/tmp/peers/mlserver-venv benchmarks/peers/start_mlserver.sh
# Setup (outside the repository):
#   python3.11 -m venv /tmp/peers/mlserver-venv && /tmp/peers/mlserver-venv/bin/pip install mlserver==1.7.1
# settings.json sets parallel_workers 0: inference runs inside the server process. (MLServer's
# default, 1 worker process, fails to start its worker with uvloop 0.23: "There is no current
# event loop in thread MainThread"; the worker path would also add an IPC hop per request.)
set -euo pipefail
cd "$(dirname "$0")/mlserver_models"
VENV=${MLSERVER_VENV:-/tmp/peers/mlserver-venv}
exec "$VENV/bin/mlserver" start .
