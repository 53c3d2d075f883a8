#!/usr/bin/env bash
# What to run on the GPU machine, in one call (from the repository root, with `.whl` carried;
# scripts/device_wheels.sh fetches it): install the carried wheels, then the GPU tests of the
# tactics not yet run on a GPU, the whole GPU suite, the build-memory diagnosis and the model
# benchmarks. Logs go to $OUT (the device tool brings them back). Each step has its own time
# limit, so one that hangs leaves the others their turn.
#   bash scripts/device_check.sh [unverified|suite|memory|models|bf16|int8|all]   (default: all)
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/device_check}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/cudnn/*.whl .whl/nvmath/*.whl .whl/ml_dtypes*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
step() { [ "${1}" = "${want}" ] || [ "${want}" = all ]; }
want=${1:-all}
if step unverified; then  # written without a GPU (2026-12-06): TF32, INT8 residual codes,
    # INT8 max pooling, the int8-residual kernel cases, FP8 and weight-only layers
    timeout 420 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_fp8.py \
        tests/gpu/test_layers_gpu.py tests/gpu/test_detection_layers_gpu.py \
        tests/gpu/test_spatial_resize_gpu.py tests/gpu/test_tf32.py \
        tests/gpu/test_layout_kernels.py tests/gpu/test_cudnn_quantized.py \
        tests/gpu/test_quantized.py tests/gpu/test_cudnn.py tests/gpu/test_refit_gpu.py \
        tests/gpu/test_bf16.py tests/gpu/test_runtime.py tests/gpu/test_plugins.py 2>&1 \
        | tee "$out/unverified.log" | tail -25
    timeout 170 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py \
        -k "quantize or cast or pool or reduce or bf16 or deconv or lrn or non_zero or assert or grid or nms or reverse" 2>&1 | tee -a "$out/unverified.log" | tail -8
fi
if step suite; then
    timeout 300 python3 -m pytest -q -p no:cacheprovider tests/gpu \
        --ignore tests/gpu/test_multi_gpu_server.py 2>&1 | tee "$out/suite.log" | tail -25
fi
if step memory; then
    timeout 150 python3 benchmarks/gpu_build_memory.py 2>&1 | grep -v Warn \
        | tee "$out/memory.log"
fi
if step models; then
    timeout 420 python3 benchmarks/gpu_models.py --precisions fp16,fp32 --warm-cache \
        --compile reduce-overhead 2>&1 | grep -v "Warn\|torch.onnx.export" \
        | tee "$out/models.log"
fi
if step bf16; then  # BF16 builds (BuilderFlag.BF16) against PyTorch in bfloat16
    timeout 420 python3 benchmarks/gpu_models.py --precisions bf16 --compile reduce-overhead \
        2>&1 | grep -v "Warn\|torch.onnx.export" | tee "$out/bf16.log"
fi
if step int8; then
    timeout 150 python3 benchmarks/quantization_bench.py 2>&1 | tee "$out/int8.log"
    timeout 400 python3 benchmarks/quantization_bench.py --level 3 --fp8 2>&1 \
        | tee "$out/int8_timed.log"
fi
