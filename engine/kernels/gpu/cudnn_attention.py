"""Scaled dot-product attention on cuDNN's fused attention kernel (``graph.sdpa`` of the
frontend; TacticSource.CUDNN): ``softmax(q @ k^T * scale + mask) @ v`` in one kernel that
keeps the scores on chip (flash attention), instead of two GEMMs around a softmax pass over
a scores tensor in memory.

q, k and v are read through their strides, so the sequence-major layout of the fused layer
(``sequence_major``: ``[B, S, H, D]``, the projections' own order) needs no head transposes:
cuDNN takes each as logical ``[B, H, S, D]`` with the strides of the view. The output is
written in the layer's layout the same way. k given already transposed (``[B, H, D, Sk]``)
is read as the swapped view. An additive mask broadcastable to the scores is a bias of
``[b, h, Sq, Sk]`` (b in {1, B}, h in {1, H}), expanded along the rows where it is
narrower.

HALF and BF16 only (cuDNN's fused attention computes in FP32 with FP16 or BF16 operands;
BF16 tensors are their uint16 patterns, see ``bf16.py``; FLOAT stays with the GEMM tactic,
and BF16 takes static shapes only, as the GEMM tactic has no BF16 form); head sizes cuDNN
refuses, like other shapes it has no engine for, fail the graph build and the builder keeps
the GEMM tactic. With dynamic shapes, a shape cuDNN refuses at run time runs the GEMM tactic
instead.
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from engine.kernels.gpu import bf16, cudnn_conv
from engine.kernels.gpu.capabilities import contiguous
from engine.kernels.gpu.fused_attention import fused_attention
from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused_attention import IFusedAttentionLayer
from engine.network.shapes import broadcast_shapes

_Layout = tuple[tuple[int, ...], tuple[int, ...]]  # (dims, element strides) of a 4-D view


class _AttentionGraph:
    def __init__(self, q: _Layout, k: _Layout, v: _Layout, out: _Layout,
                 bias: tuple[int, ...] | None, scale: float, dtype: np.dtype) -> None:
        cudnn, graph, io = cudnn_conv.new_graph(dtype)
        self.q, self.k, self.v = (
            graph.tensor(name=name, dim=list(dims), stride=list(strides), data_type=io)
            for name, (dims, strides) in (("q", q), ("k", k), ("v", v)))
        self.bias = None
        if bias is not None:
            self.bias = graph.tensor(name="bias", dim=list(bias),
                                     stride=list(_c_strides(bias)), data_type=io)
        o, _ = graph.sdpa(name="sdpa", q=self.q, k=self.k, v=self.v, attn_scale=scale,
                          bias=self.bias, generate_stats=False)
        o.set_output(True).set_data_type(io).set_dim(list(out[0])).set_stride(list(out[1]))
        self.o = o
        self.graph = graph
        self.workspace_bytes = cudnn_conv.finish_graph(cudnn, graph, dtype, [
            t for t in (self.q, self.k, self.v, self.bias, o) if t is not None])


def _c_strides(dims: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for d in reversed(dims):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


def _heads_first(layer: IFusedAttentionLayer, shapes: list[tuple[int, ...]]
                 ) -> list[tuple[int, ...]] | None:
    """The permutations that make q, k, v and the output logical ``[B, H, S, D]`` views (k
    as rows of keys), or None where the layer is not such an attention."""
    rank = len(shapes[0])
    if rank != 4 or any(len(s) != 4 for s in shapes[:3]):
        return None
    if getattr(layer, "sequence_major", False):
        return [(0, 2, 1, 3)] * 4
    k_perm = (0, 1, 2, 3) if layer.transpose_k else (0, 1, 3, 2)
    return [(0, 1, 2, 3), k_perm, (0, 1, 2, 3), (0, 1, 2, 3)]


def _geometry(layer: IFusedAttentionLayer, q: tuple[int, ...], k: tuple[int, ...],
              v: tuple[int, ...], mask: tuple[int, ...] | None
              ) -> tuple[list[tuple[int, ...]], tuple[int, ...], tuple[int, ...] | None] | None:
    """(permutations, output shape in the layer's layout, bias dims) or None."""
    perms = _heads_first(layer, [q, k, v])
    if perms is None:
        return None
    qh, kh, vh = (tuple(s[p] for p in perm) for s, perm in zip((q, k, v), perms))
    batch, heads, sq, d = qh
    if kh[:2] != (batch, heads) or vh[:2] != (batch, heads) or kh[3] != d or \
            vh[2] != kh[2] or min(qh + kh + vh) <= 0:
        return None
    sk, dv = kh[2], vh[3]
    out_heads_first = (batch, heads, sq, dv)
    inverse = np.argsort(perms[3])
    out_shape = tuple(out_heads_first[i] for i in inverse)
    bias = None
    if mask is not None:
        try:
            if len(mask) > 4 or broadcast_shapes(mask, (batch, heads, sq, sk)) != \
                    (batch, heads, sq, sk):
                return None
        except ValueError:
            return None
        full = (1,) * (4 - len(mask)) + tuple(mask)
        bias = (full[0], full[1], sq, sk)
    return perms, out_shape, bias


def _layouts(shapes: list[tuple[int, ...]], strides: list[tuple[int, ...]],
             perms: list[tuple[int, ...]]) -> list[_Layout]:
    """Dims and element strides of each array seen through its permutation."""
    return [(tuple(shape[p] for p in perm), tuple(stride[p] for p in perm))
            for shape, stride, perm in zip(shapes, strides, perms)]


def _strides(a: cupy.ndarray) -> tuple[int, ...]:
    return tuple(s // a.itemsize for s in a.strides)


def _graph(layout: list[_Layout], bias: tuple[int, ...] | None, scale: float,
           dtype: np.dtype) -> _AttentionGraph | None:
    q, k, v, out = layout
    key = ("sdpa", q, k, v, out, bias, float(scale), np.dtype(dtype).name)
    return cudnn_conv.cached_graph(key, lambda: _AttentionGraph(q, k, v, out, bias, scale,
                                                                np.dtype(dtype)))


_STORAGE = {"HALF": np.dtype(np.float16), "BF16": bf16.STORAGE}


def _readable(a: cupy.ndarray) -> cupy.ndarray:
    """``a`` if cuDNN can read it through its strides (unit last stride, non-negative and
    16-byte aligned strides), else a C-ordered copy."""
    if a.strides[-1] == a.itemsize and all(s >= 0 and s % 16 == 0 for s in a.strides[:-1]):
        return a
    return contiguous(a)


def _fits(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IFusedAttentionLayer)
    q, k, v = inputs[0], inputs[1], inputs[2]
    mask = inputs[3] if len(inputs) > 3 else None
    if q is None or k is None or v is None or q.dtype.name not in _STORAGE or \
            k.dtype != q.dtype or v.dtype != q.dtype or \
            any(t != q.dtype for t in layer._output_types.values()):
        return False
    if mask is not None and mask.dtype.name not in ("FLOAT", "HALF") and \
            not (mask.dtype.name == "BF16" and q.dtype.name == "BF16"):
        return False
    if not cudnn_conv.available():
        return False
    shapes = [tuple(t.shape) for t in (q, k, v)]
    dynamic = any(d < 0 for s in shapes for d in s) or \
        (mask is not None and min(mask.shape) < 0)
    if dynamic and q.dtype.name == "BF16":
        return False
    if dynamic:
        # a dynamic shape: shapes cuDNN refuses run the GEMM tactic at run time
        return _heads_first(layer, shapes) is not None
    geometry = _geometry(layer, shapes[0], shapes[1], shapes[2],
                         None if mask is None else tuple(mask.shape))
    if geometry is None:
        return False
    perms, out_shape, bias = geometry
    shapes.append(out_shape)
    layout = _layouts(shapes, [_c_strides(s) for s in shapes], perms)  # as timing feeds them
    return _graph(layout, bias, layer.scale, _STORAGE[q.dtype.name]) is not None


@kernel(LayerType.FUSED_ATTENTION, backend="gpu", name="gpu.attention_cudnn_sdpa",
        supports=_fits, source="CUDNN")
def attention(layer: ILayer, inputs: list[Any]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedAttentionLayer)
    q, k, v = (_readable(a) for a in inputs[:3])
    mask = inputs[3] if len(inputs) > 3 else None
    geometry = _geometry(layer, q.shape, k.shape, v.shape,
                         None if mask is None else tuple(mask.shape))
    graph = None
    if geometry is not None:
        perms, out_shape, bias = geometry
        out = cupy.empty(out_shape, q.dtype)
        graph = _graph(_layouts([a.shape for a in (q, k, v, out)],
                                [_strides(a) for a in (q, k, v, out)], perms),
                       bias, layer.scale, q.dtype)
        if graph is None and q.dtype == bf16.STORAGE:
            # Views cuDNN refuses read as C-ordered copies: the layout _fits checked.
            q, k, v = (contiguous(a) for a in (q, k, v))
            graph = _graph(_layouts([a.shape for a in (q, k, v, out)],
                                    [_strides(a) for a in (q, k, v, out)], perms),
                           bias, layer.scale, q.dtype)
    if graph is None:
        if q.dtype == bf16.STORAGE:  # no GEMM fallback computes BF16 attention
            raise ValueError(f"cuDNN has no BF16 attention graph for q {q.shape}")
        return fused_attention(layer, inputs)
    pack = {graph.q: q, graph.k: k, graph.v: v, graph.o: out}
    if graph.bias is not None:
        assert mask is not None and bias is not None
        full = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
        if q.dtype == bf16.STORAGE:
            if full.dtype != bf16.STORAGE:  # FLOAT or HALF: rounded to BF16 (no overflow)
                full = bf16.narrow(full)
        elif full.dtype != q.dtype:  # a FLOAT mask: -1e9 and the like saturate, not overflow
            if full.dtype == bf16.STORAGE:
                full = bf16.widen(full)
            full = cupy.clip(full, -65504, 65504).astype(q.dtype)
        pack[graph.bias] = cupy.ascontiguousarray(cupy.broadcast_to(full, bias))
    cudnn_conv.execute(graph.graph, pack, graph.workspace_bytes)
    return [out]
