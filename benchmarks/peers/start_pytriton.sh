#!/usr/bin/env bash
# Start tritonserver (bundled in nvidia-pytriton 0.7.0) on add_sub through PyTriton
# (HTTP 18010, gRPC 18011, metrics 18012).
#   PYTRITON_VENV=/tmp/peers/pytriton-venv benchmarks/peers/start_pytriton.sh
# Setup (outside the repository; Python 3.12, whose libpython the Python backend stub loads):
#   /root/.pyenv/versions/3.12.1/bin/python -m venv /tmp/peers/pytriton-venv
#   /tmp/peers/pytriton-venv/bin/pip install nvidia-pytriton==0.7.0
set -euo pipefail
cd "$(dirname "$0")"
VENV=${PYTRITON_VENV:-/tmp/peers/pytriton-venv}
PYLIB=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
export LD_LIBRARY_PATH="$PYLIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$VENV/bin/python" pytriton_add_sub.py "$@"
