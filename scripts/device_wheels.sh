#!/usr/bin/env bash
# Fetch the wheels the GPU machine lacks into .whl/ (ignored by git; carried to the device
# with `carry: [".whl"]`): nvidia-cudnn-frontend (the cuDNN tactics), nvmath-python (the
# cuBLASLt tactic) and ml_dtypes, for CPython 3.12 on x86-64 Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
fetch() {  # folder, requirement
    mkdir -p ".whl/$1"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d ".whl/$1" "$2"
}
fetch cudnn nvidia-cudnn-frontend==1.32.0
fetch nvmath nvmath-python==1.0.1
fetch . ml_dtypes
ls -R .whl
