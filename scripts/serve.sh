#!/usr/bin/env bash
# Set up, make the bundled example models, and start the inference server on them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/python examples/make_models.py --output examples/models
exec .venv/bin/python -m server --model-repository examples/models "$@"
