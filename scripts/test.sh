#!/usr/bin/env bash
# Set up and run the test suite on the CPU target (GPU tests skip themselves without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
