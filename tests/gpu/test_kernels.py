"""Every GPU tactic against the CPU kernel of its layer type, on random inputs.

``CASES`` holds, per layer type, small networks that exercise it; each registered GPU tactic
runs every case of its layer type that it accepts, and is compared with the first CPU tactic.
A GPU tactic without any case it accepts fails the test: new kernels come with cases.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import engine as trt
from engine.kernels.backends import gpu_available, load_backend
from engine.kernels.registry import Tactic, tactics_for
from engine.network.layer import ILayer, LayerType, TensorInfo
from tests.gpu.kernel_cases import CASES, KernelCase

cupy = pytest.importorskip("cupy")


FALLBACK = "@fp32"  # engine.kernels.gpu.float_fallback.SUFFIX: the FLOAT form serving BF16/FP8


def gpu_tactics(fallbacks: bool = False) -> list[Tactic]:
    """The GPU tactics: the kernels (``fallbacks`` False), or their derived ``@fp32`` forms."""
    if not gpu_available():
        return []
    load_backend("gpu")
    load_backend("cpu")
    return [t for layer_type in LayerType for t in tactics_for("gpu", layer_type)
            if t.name.endswith(FALLBACK) == fallbacks]


def make_layer(case: KernelCase) -> tuple[ILayer, list[np.ndarray | None]]:
    network = trt.Builder(trt.Logger()).create_network(0)
    tensors = {name: network.add_input(name, trt.DataType(_dtype(a)), a.shape)
               for name, a in case.inputs.items()}
    layer = case.define(network, tensors)
    arrays = []
    for t in layer._inputs:
        if t is None:
            arrays.append(None)
        elif t.name in case.inputs:
            arrays.append(case.inputs[t.name])
        else:  # made by a constant layer of the case
            arrays.append(np.asarray(t._producer.array()))
    return layer, arrays


def _dtype(array: np.ndarray) -> trt.DataType:
    from engine.types import from_numpy_dtype

    return from_numpy_dtype(array.dtype)


def check_tactic_against_cpu(tactic: Tactic, case: KernelCase) -> bool:
    """Run ``case`` with ``tactic`` and with the CPU kernel; False if the tactic refuses it."""
    layer, arrays = make_layer(case)
    infos = [None if a is None else TensorInfo(a.shape, _dtype(a)) for a in arrays]
    if not tactic.accepts(layer, infos):
        return False
    from engine.kernels.gpu.storage import host_storage

    expected = tactics_for("cpu", layer.layer_type)[0].run(layer, arrays)
    device_args = [None if a is None else  # BF16 and FP8 as the device holds them
                   (a if i in layer._shape_inputs else cupy.asarray(host_storage(a)))
                   for i, a in enumerate(arrays)]
    poisoned = [None if a is None else a.copy() for a in device_args]
    got = tactic.run(layer, device_args)
    for before, after in zip(poisoned, device_args):  # kernels never write into inputs
        if before is not None:
            np.testing.assert_array_equal(cupy.asnumpy(before), cupy.asnumpy(after))
    assert len(got) == len(expected)
    for index, (g, e) in enumerate(zip(got, expected)):
        assert isinstance(g, cupy.ndarray), f"output {index} is {type(g).__name__}, not CuPy"
        host = cupy.asnumpy(g)
        e = np.asarray(e)
        if e.dtype == ml_dtypes.float8_e4m3fn and case.tolerance.get("float8"):
            # FP8 codes quantized from float sums that round differently (the GPU's float32,
            # the CPU's float64): a code a rounding away from a midpoint is one step off.
            tol = case.tolerance["float8"]
            np.testing.assert_allclose(host.view(e.dtype).astype(np.float64),
                                       e.astype(np.float64), rtol=tol, atol=tol,
                                       err_msg=f"output {index}")
            continue
        e = host_storage(e)  # BF16 / FP8 results: their patterns, compared exactly
        assert host.shape == e.shape, f"output {index}: shape {host.shape} != {e.shape}"
        if e.dtype.kind == "f":
            tol = case.tolerance.get(str(e.dtype), 1e-5 if e.dtype == np.float32 else 2e-2)
            np.testing.assert_allclose(host.astype(np.float64), e.astype(np.float64),
                                       rtol=tol, atol=tol, err_msg=f"output {index}")
        else:
            np.testing.assert_array_equal(host, e, err_msg=f"output {index}")
    return True


@pytest.mark.parametrize("tactic", gpu_tactics(), ids=lambda t: t.name)
def test_gpu_tactic_matches_cpu_kernel(tactic: Tactic):
    if "fp8_cublaslt" in tactic.name:
        from engine.kernels.gpu import cublaslt

        if not cublaslt.fp8_supported():
            pytest.skip("no FP8 tensor cores (compute capability 8.9+) or no cuBLASLt here")
    cases = CASES.get(tactic.layer_type, [])
    ran = [case.name for case in cases if check_tactic_against_cpu(tactic, case)]
    assert ran, (f"GPU tactic {tactic.name} ({tactic.layer_type.name}) accepted none of the "
                 f"test cases {[c.name for c in cases]}: add a case to tests/gpu/kernel_cases.py")


def _bf16_case(case: KernelCase) -> KernelCase | None:
    """``case`` with its FLOAT and HALF inputs in BF16; None without any."""
    import dataclasses

    import ml_dtypes

    inputs = {name: a.astype(ml_dtypes.bfloat16) if a.dtype.kind == "f" else a
              for name, a in case.inputs.items()}
    if all(a is case.inputs[name] for name, a in inputs.items()):
        return None
    return dataclasses.replace(case, inputs=inputs)


def test_bf16_layers_through_the_fp32_forms_match_the_cpu_kernels():
    """Each ``@fp32`` tactic on the BF16 forms of its layer type's cases (those the network
    and the tactic accept): BF16 patterns in, widened to FLOAT, the tactic's FLOAT result
    against the CPU kernel's BF16 result, within BF16's precision."""
    import ml_dtypes

    from engine.kernels.gpu.storage import host_storage

    ran: dict[str, int] = {}
    for tactic in gpu_tactics(fallbacks=True):
        for case in CASES.get(tactic.layer_type, []):
            bf16_case = _bf16_case(case)
            if bf16_case is None:
                continue
            try:
                layer, arrays = make_layer(bf16_case)
                expected = tactics_for("cpu", layer.layer_type)[0].run(layer, arrays)
            except (trt.NetworkError, TypeError, ValueError):
                continue  # the network or the CPU kernel does not take BF16 here
            infos = [None if a is None else TensorInfo(a.shape, _dtype(a)) for a in arrays]
            if not tactic.accepts(layer, infos):
                continue
            device = [None if a is None else a if i in layer._shape_inputs else
                      cupy.asarray(host_storage(a))
                      for i, a in enumerate(arrays)]
            got = tactic.run(layer, device)
            for g, e in zip(got, expected):
                e = np.asarray(e)
                if e.dtype.kind == "f" or e.dtype == ml_dtypes.bfloat16:
                    np.testing.assert_allclose(cupy.asnumpy(g).astype(np.float64),
                                               e.astype(np.float64), rtol=3e-2, atol=3e-2,
                                               err_msg=f"{tactic.name} on {case.name}")
            ran[tactic.layer_type.name] = ran.get(tactic.layer_type.name, 0) + 1
    print(f"BF16 cases run through @fp32 tactics, by layer type: {ran}")
    for kind in ("ACTIVATION", "ELEMENTWISE", "SOFTMAX", "REDUCE"):
        assert ran.get(kind), f"no BF16 {kind} case ran: {ran}"


def test_every_layer_type_with_a_cpu_kernel_is_listed():
    """Layer types the CPU backend runs but the GPU backend does not make a build fail; this
    lists them so the gap is visible in the test log."""
    if not gpu_available():
        pytest.skip("needs a GPU")
    from engine.kernels.registry import layer_types_supported

    missing = sorted(t.name for t in layer_types_supported("cpu") - layer_types_supported("gpu"))
    print(f"layer types with a CPU kernel and no GPU kernel: {missing or 'none'}")
