"""The cuDNN fused-attention tactic (``gpu.attention_cudnn_sdpa``, TacticSource.CUDNN) on a
BERT-style attention block built layer by layer: the projections' outputs (network inputs
here), head split (reshape + transpose),
``q @ k^T``, scale, an optional additive mask, softmax, ``@ v``, head merge. Built FP16 with
cuDNN as the only tactic source so the attention must take the SDPA tactic, and compared
with the same network on the CPU target. Skips itself where cuDNN's frontend is missing."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine as trt
from tests.gpu.gpu_support import build_gpu_engine, only_source, run_on_both

cupy = pytest.importorskip("cupy")
cudnn_conv = pytest.importorskip("engine.kernels.gpu.cudnn_conv")

RNG = np.random.default_rng(11)
E = trt.ElementWiseOperation
BATCH, SEQUENCE, HEADS, HEAD = 2, 48, 4, 32
HIDDEN = HEADS * HEAD


def attention_block(k_transposed_by_shuffle: bool, mask: str | None):
    def define(net: trt.INetworkDefinition, t: dict[str, trt.ITensor]):
        def heads(name: str, perm: tuple[int, ...]) -> trt.ITensor:
            split = net.add_shuffle(t[name])
            split.reshape_dims = (BATCH, SEQUENCE, HEADS, HEAD)
            split.second_transpose = perm
            return split.get_output(0)

        q = heads("q", (0, 2, 1, 3))
        v = heads("v", (0, 2, 1, 3))
        if k_transposed_by_shuffle:  # k^T made by the shuffle: [B, H, D, S]
            k = heads("k", (0, 2, 3, 1))
            scores = net.add_matrix_multiply(q, trt.MatrixOperation.NONE, k,
                                             trt.MatrixOperation.NONE)
        else:
            k = heads("k", (0, 2, 1, 3))
            scores = net.add_matrix_multiply(q, trt.MatrixOperation.NONE, k,
                                             trt.MatrixOperation.TRANSPOSE)
        scale = net.add_constant((1, 1, 1, 1), np.full((1, 1, 1, 1), math.sqrt(HEAD),
                                                       np.float16)).get_output(0)
        s = net.add_elementwise(scores.get_output(0), scale, E.DIV).get_output(0)
        if mask is not None:
            s = net.add_elementwise(s, t["mask"], E.SUM).get_output(0)
        softmax = net.add_softmax(s)
        softmax.axes = 1 << 3
        context = net.add_matrix_multiply(softmax.get_output(0), trt.MatrixOperation.NONE, v,
                                          trt.MatrixOperation.NONE).get_output(0)
        merge = net.add_shuffle(context)
        merge.first_transpose = (0, 2, 1, 3)
        merge.reshape_dims = (BATCH, SEQUENCE, HIDDEN)
        return [merge.get_output(0)]

    return define


# No cuBLAS: the attention chain has no tactic unless it becomes the fused layer.
fp16_cudnn_only = only_source(trt.TacticSource.CUDNN, fp16=True)


def _inputs(mask: str | None) -> dict[str, np.ndarray]:
    # HALF inputs: the tactic is FP16's (a FLOAT attention keeps the GEMM tactic)
    inputs = {n: RNG.standard_normal((BATCH, SEQUENCE, HIDDEN)).astype(np.float16)
              for n in "qkv"}
    if mask == "padding":  # [B, 1, 1, Sk]: the last keys of the second sequence masked out
        m = np.zeros((BATCH, 1, 1, SEQUENCE), np.float16)
        m[1, ..., SEQUENCE - 10:] = -30000.0
        inputs["mask"] = m
    elif mask == "causal":  # [1, 1, Sq, Sk]
        inputs["mask"] = np.where(np.tril(np.ones((1, 1, SEQUENCE, SEQUENCE))) > 0, 0.0,
                                  -10000.0).astype(np.float16)
    return inputs


@pytest.mark.parametrize("mask", [None, "padding", "causal"])
@pytest.mark.parametrize("k_form", ["k_t_shuffle", "k_transpose_flag"])
def test_attention_block_on_cudnn_sdpa_matches_the_cpu(k_form: str, mask: str | None) -> None:
    if not cudnn_conv.available():
        pytest.skip("cuDNN's frontend (nvidia-cudnn-frontend) is not installed")
    define = attention_block(k_form == "k_t_shuffle", mask)
    inputs = _inputs(mask)
    engine = build_gpu_engine(define, inputs, config_hook=fp16_cudnn_only)
    tactics = [tactic for _, _, tactic in engine.layer_tactics]
    assert "gpu.attention_cudnn_sdpa" in tactics, tactics
    by_gpu, by_cpu = run_on_both(define, inputs, config_hook=fp16_cudnn_only)
    np.testing.assert_allclose(cupy.asnumpy(by_gpu[0]).astype(np.float32),
                               by_cpu[0].astype(np.float32), rtol=2e-2, atol=2e-2)
