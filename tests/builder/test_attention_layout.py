"""The head split / merge transposes around a recognized attention fold into the fused layer
(``sequence_major``): on a BERT-style block built layer by layer, with static and dynamic
shapes, and on a PyTorch export; left alone where a shuffle has a second reader or another
permutation; sequence-major plans round-trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine as trt
from engine.errors import NetworkError
from engine.network.layer import TensorInfo
from engine.network.layers.fused_attention import IFusedAttentionLayer
from tests.builder.support import assert_same, run_optimized_and_plain

M, E = trt.MatrixOperation, trt.ElementWiseOperation
B, S, H, D = 2, 5, 3, 4
SPLIT = (0, 2, 1, 3)  # [B, S, H, D] -> [B, H, S, D]
SPLIT_K = (0, 2, 3, 1)  # [B, S, H, D] -> [B, H, D, S]
rng = np.random.default_rng(7)
WEIGHTS = {name: rng.standard_normal((H * D, H * D)).astype(np.float32) / 4 for name in "qkv"}


def _inputs() -> dict[str, np.ndarray]:
    mask = np.zeros((B, 1, 1, S), np.float32)
    mask[-1, ..., S // 2:] = -10000.0  # the last sequence is padded
    return {"x": rng.standard_normal((B, S, H * D)).astype(np.float32), "mask": mask}


def _reference(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The block in NumPy, written the way PyTorch's BERT computes it."""
    q, k, v = ((x @ WEIGHTS[n]).reshape(B, S, H, D).transpose(SPLIT) for n in "qkv")
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(D) + mask
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ v).transpose(SPLIT).reshape(B, S, H * D)


def _block(k_transposed: bool = False, split: tuple[int, ...] = SPLIT,
           merge: tuple[int, ...] = SPLIT, second_reader: bool = False):
    """``define`` for the attention block: a projection and a head-splitting shuffle (reshape
    with 0 placeholders, then ``split``) each for q, k and v, ``q @ k^T / sqrt(D) + mask``,
    softmax, ``@ v``, and a shuffle merging the heads (``merge``, then a reshape with 0
    placeholders). ``k_transposed``: k's shuffle makes [B, H, D, S] and the product takes it
    as it is; ``second_reader``: v's heads are also a network output."""

    def define(network, t):
        def heads(name, permutation):
            w = network.add_constant((1, H * D, H * D), WEIGHTS[name][None]).get_output(0)
            projection = network.add_matrix_multiply(t["x"], M.NONE, w, M.NONE)
            projection.name = f"{name}_projection"
            shuffle = network.add_shuffle(projection.get_output(0))
            shuffle.reshape_dims = (0, 0, H, D)
            shuffle.second_transpose = permutation
            shuffle.name = f"{name}_split"
            return shuffle.get_output(0)

        q = heads("q", split)
        k = heads("k", SPLIT_K if k_transposed else split)
        v = heads("v", split)
        scores = network.add_matrix_multiply(q, M.NONE, k, M.NONE if k_transposed else M.TRANSPOSE)
        root = network.add_constant((1, 1, 1, 1), np.full((1, 1, 1, 1), math.sqrt(D), np.float32))
        scaled = network.add_elementwise(scores.get_output(0), root.get_output(0), E.DIV)
        masked = network.add_elementwise(scaled.get_output(0), t["mask"], E.SUM)
        softmax = network.add_softmax(masked.get_output(0))
        softmax.axes = 1 << 3
        context = network.add_matrix_multiply(softmax.get_output(0), M.NONE, v, M.NONE)
        shuffle = network.add_shuffle(context.get_output(0))
        shuffle.first_transpose = merge
        shuffle.reshape_dims = (0, 0, H * D)
        shuffle.name = "merge"
        return [shuffle.get_output(0)] + ([v] if second_reader else [])

    return define


def _layers(engine: trt.ICudaEngine, kind: type) -> list:
    return [layer for layer, _ in engine._steps if type(layer) is kind]


def _attention(engine: trt.ICudaEngine) -> IFusedAttentionLayer:
    (attention,) = _layers(engine, IFusedAttentionLayer)
    return attention


def _transposes(engine: trt.ICudaEngine) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """(name, first, second transpose) of each shuffle that transposes."""
    found = []
    for shuffle in _layers(engine, trt.IShuffleLayer):
        rank = len(engine._network._info(shuffle._outputs[0]).shape)
        first, second = tuple(shuffle.first_transpose[:4]), tuple(shuffle.second_transpose[:rank])
        if first != tuple(range(4)) or second != tuple(range(rank)):
            found.append((shuffle.name, first, second))
    return found


@pytest.mark.parametrize("k_transposed", [False, True], ids=["k-rows", "k-transposed"])
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_head_transposes_fold_into_attention(monkeypatch, k_transposed, dynamic):
    inputs = _inputs()
    shapes = {"x": (-1, -1, H * D), "mask": (-1, 1, 1, -1)} if dynamic else None
    engine, got, plain = run_optimized_and_plain(monkeypatch, _block(k_transposed), inputs,
                                                 dynamic=shapes)
    attention = _attention(engine)
    assert attention.sequence_major and attention.transpose_k
    assert _transposes(engine) == []
    assert [s.name for s in _layers(engine, trt.IShuffleLayer)] == \
        ["q_split", "k_split", "v_split", "merge"]  # their reshapes stay
    assert_same(got, plain)
    np.testing.assert_allclose(got["out0"], _reference(**inputs), rtol=1e-4, atol=1e-5)


def test_output_reshape_with_zero_placeholders_keeps_its_meaning(monkeypatch):
    # The merge reshape (0, 0, H * D) copies B and S from what its first transpose made,
    # [B, S, H, D]; sequence-major attention hands it that same tensor, so the 0s copy the
    # same dims. Copied from the heads-first [B, H, S, D] they would ask for (B, H, H * D),
    # 72 of the 120 elements, and fail: no reshape with 0s changes meaning, none is refused.
    inputs = _inputs()
    engine, got, _ = run_optimized_and_plain(monkeypatch, _block(), inputs)
    (merge,) = [s for s in _layers(engine, trt.IShuffleLayer) if s.name == "merge"]
    assert tuple(merge.reshape_dims) == (0, 0, H * D) and merge.zero_is_placeholder
    assert got["out0"].shape == (B, S, H * D)
    np.testing.assert_allclose(got["out0"], _reference(**inputs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", [
    pytest.param({"second_reader": True}, id="split-read-twice"),
    # [H, B, S, D] heads: another permutation (the mask follows it), merged back by (1, 2, 0, 3)
    pytest.param({"split": (2, 0, 1, 3), "merge": (1, 2, 0, 3)}, id="other-split"),
    pytest.param({"merge": (0, 2, 3, 1)}, id="other-merge"),  # merges to [B, S, D, H]
])
def test_head_transposes_stay_where_the_pattern_differs(monkeypatch, case):
    inputs = _inputs()
    if case.get("split") == (2, 0, 1, 3):
        inputs["mask"] = inputs["mask"].transpose(1, 0, 2, 3)
    engine, got, plain = run_optimized_and_plain(monkeypatch, _block(**case), inputs)
    assert not _attention(engine).sequence_major
    assert len(_transposes(engine)) == 4
    assert_same(got, plain)


def test_sequence_major_plan_round_trips(monkeypatch):
    inputs = _inputs()
    engine, got, _ = run_optimized_and_plain(monkeypatch, _block(), inputs)
    logger = trt.Logger(trt.Logger.ERROR)
    restored = trt.Runtime(logger).deserialize_cuda_engine(engine.serialize())
    assert restored is not None
    attention = _attention(restored)
    assert attention.sequence_major and attention.transpose_k
    assert attention.attributes() == _attention(engine).attributes()
    assert_same(restored.create_execution_context().infer(inputs), got)


def test_plan_record_without_sequence_major_reads_as_heads_first():
    from engine.network.serialize import decode_network, encode_network

    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network(0)
    q = network.add_input("q", trt.float32, (B, H, S, D))
    network._layers.append(IFusedAttentionLayer(network, q, q, q, None, 0.5, True))
    record, arrays = encode_network(network)
    (attributes,) = [layer["attrs"] for layer in record["layers"]]
    del attributes["sequence_major"]  # as a plan written before the attribute existed
    decoded, _ = decode_network(record, arrays)
    assert decoded._layers[0].sequence_major is False


def _shapes_of(network: trt.INetworkDefinition, layer: IFusedAttentionLayer
               ) -> list[tuple[int, ...]]:
    return [info.shape for info in layer.infer([network._info(t) for t in layer._inputs])]


def test_sequence_major_shapes_and_refusals():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network(0)
    q = network.add_input("q", trt.float32, (B, S, H, D))
    kv = network.add_input("kv", trt.float32, (B, S + 2, H, D))
    mask = network.add_input("mask", trt.float32, (B, 1, 1, S + 2))
    layer = IFusedAttentionLayer(network, q, kv, kv, mask, 0.5, True, sequence_major=True)
    assert _shapes_of(network, layer) == [(B, S, H, D)]
    layer.transpose_k = False
    with pytest.raises(NetworkError, match="sequence_major needs transpose_k"):
        _shapes_of(network, layer)
    flat = network.add_input("flat", trt.float32, (B, S, H * D))
    layer = IFusedAttentionLayer(network, flat, flat, flat, None, 0.5, True, sequence_major=True)
    with pytest.raises(NetworkError, match="rank 4"):
        _shapes_of(network, layer)
    wide = TensorInfo((1, B, H, S, S + 2), trt.float32)
    layer = IFusedAttentionLayer(network, q, kv, kv, None, 0.5, True, sequence_major=True)
    with pytest.raises(NetworkError, match="more axes than the scores"):
        layer.infer([network._info(t) for t in (q, kv, kv)] + [wide])


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_pytorch_bert_export_runs_sequence_major(tmp_path, dynamic):
    pytest.importorskip("torch")
    import onnxruntime as ort

    from tests.onnx.pytorch_models import BertConfig, export_bert
    from tests.onnx.support import errors, parse

    config = BertConfig(hidden=64, layers=2, heads=4)
    path = tmp_path / "bert.onnx"
    export_bert(path, config, batch=2, sequence=8, dynamic=dynamic)
    ok, network, parser = parse(path.read_bytes(), str(path))
    assert ok, [str(e) for e in errors(parser)]
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    build_config = builder.create_builder_config()
    build_config.default_device_type = trt.DeviceType.CPU
    if dynamic:
        profile = builder.create_optimization_profile()
        for name in ("input_ids", "attention_mask"):
            profile.set_shape(name, (1, 4), (2, 8), (3, 16))
        build_config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, build_config)
    engine = trt.Runtime(trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine(plan)
    attentions = _layers(engine, IFusedAttentionLayer)
    assert len(attentions) == 2 and all(a.sequence_major for a in attentions)
    assert _transposes(engine) == []
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    context = engine.create_execution_context()
    for batch, sequence in [(2, 8)] + ([(3, 13)] if dynamic else []):
        feeds = {"input_ids": rng.integers(0, config.vocab_size, (batch, sequence), np.int64),
                 "attention_mask": np.ones((batch, sequence), np.int64)}
        feeds["attention_mask"][-1, sequence // 2:] = 0
        got = context.infer(feeds)["hidden_state"]
        (want,) = session.run(None, feeds)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
