"""Models exported from PyTorch parse, build for the CPU target and match onnxruntime on the
same ONNX file: the full-size ResNet-50 (batch 1, 224x224) and a BERT-style encoder.

Each model is written in ``tests/onnx/pytorch_models.py`` with random weights and exported at
test time into ``tmp_path`` by PyTorch's TorchScript exporter (opset 17). The BERT runs twice:
small (2 layers, hidden 384, 12 heads) and, marked slow, BERT-base (12 layers, hidden 768,
12 heads); the small one is also exported with dynamic batch and sequence (Shape -> Gather ->
Range, ConstantOfShape, Reshape at run time) and runs at two shapes on one engine."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import engine as trt
from tests.onnx.support import errors, parse
from tests.support import CollectingLogger

pytest.importorskip("torch")

from tests.onnx.pytorch_models import BertConfig, export_bert, export_resnet50  # noqa: E402

# Both sides sum in float32 in different orders (our NumPy/BLAS GEMMs against onnxruntime's
# MLAS kernels, BatchNorm folded into the convolutions by the exporter); over ResNet-50's 53
# convolutions that leaves differences of a few 1e-5 on logits of order 1.
RTOL, ATOL = 1e-3, 1e-4
SMALL_BERT = BertConfig(hidden=384, layers=2, heads=12)
BERT_BASE = BertConfig()


def _build(path: Path, profile: Mapping[str, tuple[tuple[int, ...], ...]] | None = None
           ) -> trt.ICudaEngine:
    """Parse ``path`` and build it for the CPU target; ``profile`` maps a dynamic input to its
    (min, opt, max) shapes."""
    ok, network, parser = parse(path.read_bytes(), str(path))
    assert ok, [str(e) for e in errors(parser)]
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    if profile:
        shapes = builder.create_optimization_profile()
        for name, (low, opt, high) in profile.items():
            shapes.set_shape(name, low, opt, high)
        config.add_optimization_profile(shapes)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors()
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None, logger.errors()
    print(f"{path.name}: {network.num_layers} network layers, {engine.num_layers} engine layers")
    return engine


def _onnxruntime(path: Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, dict(feeds))
    return {o.name: value for o, value in zip(session.get_outputs(), outputs)}


def _assert_matches(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    error = np.abs(got.astype(np.float64) - expected)
    print(f"{what}: max abs error {error.max():.2e}, "
          f"relative to max |expected| {error.max() / np.abs(expected).max():.2e}")
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def _tokens(batch: int, sequence: int, config: BertConfig, seed: int
            ) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, sequence), np.int64)
    mask[-1, sequence // 2:] = 0  # the last sequence is padded to half its length
    return {"input_ids": rng.integers(0, config.vocab_size, (batch, sequence), np.int64),
            "attention_mask": mask}


def test_resnet50_matches_onnxruntime(tmp_path):
    path = tmp_path / "resnet50.onnx"
    export_resnet50(path)
    engine = _build(path)
    image = np.random.default_rng(0).standard_normal((1, 3, 224, 224), np.float32)
    got = engine.create_execution_context().infer({"image": image})
    assert got["logits"].shape == (1, 1000)
    _assert_matches(got["logits"], _onnxruntime(path, {"image": image})["logits"], "logits")


@pytest.mark.parametrize("config", [pytest.param(SMALL_BERT, id="small"),
                                    pytest.param(BERT_BASE, id="base", marks=pytest.mark.slow)])
def test_bert_encoder_matches_onnxruntime(tmp_path, config):
    path = tmp_path / "bert.onnx"
    export_bert(path, config, batch=2, sequence=16)
    engine = _build(path)
    feeds = _tokens(2, 16, config, seed=0)
    got = engine.create_execution_context().infer(feeds)
    assert got["hidden_state"].shape == (2, 16, config.hidden)
    _assert_matches(got["hidden_state"], _onnxruntime(path, feeds)["hidden_state"],
                    "hidden_state")


def test_bert_encoder_with_dynamic_batch_and_sequence(tmp_path):
    path = tmp_path / "bert_dynamic.onnx"
    export_bert(path, SMALL_BERT, dynamic=True)
    shapes = ((1, 8), (2, 16), (4, 32))
    engine = _build(path, {"input_ids": shapes, "attention_mask": shapes})
    context = engine.create_execution_context()
    for batch, sequence in [(1, 8), (3, 32)]:
        feeds = _tokens(batch, sequence, SMALL_BERT, seed=batch)
        got = context.infer(feeds)["hidden_state"]
        _assert_matches(got, _onnxruntime(path, feeds)["hidden_state"],
                        f"hidden_state at batch {batch}, sequence {sequence}")
