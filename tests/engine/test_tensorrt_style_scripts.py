"""The TensorRT-style example scripts run unchanged and match NumPy written here."""

import numpy as np

from examples.tensorrt_style import mlp, mnist_cnn


def conv2d(x, w, b):
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    out = np.zeros((n, k, h - r + 1, wd - s + 1), np.float64)
    for i in range(r):
        for j in range(s):
            patch = x[:, :, i:i + h - r + 1, j:j + wd - s + 1]
            out += np.einsum("nchw,kc->nkhw", patch, w[:, :, i, j])
    return out + b.reshape(1, k, 1, 1)


def maxpool2(x):
    n, c, h, w = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def test_mnist_cnn_matches_numpy():
    weights = mnist_cnn.make_weights()
    engine = mnist_cnn.build_engine(weights)
    image = np.random.default_rng(3).random(mnist_cnn.INPUT_SHAPE, dtype=np.float32)
    prob = mnist_cnn.infer(engine, image)

    h = maxpool2(np.maximum(conv2d(image, weights["conv1.weight"], weights["conv1.bias"]), 0))
    h = maxpool2(np.maximum(conv2d(h, weights["conv2.weight"], weights["conv2.bias"]), 0))
    h = np.maximum(h.reshape(1, -1) @ weights["fc1.weight"].T + weights["fc1.bias"], 0)
    logits = h @ weights["fc2.weight"].T + weights["fc2.bias"]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert prob.shape == (1, 10)
    np.testing.assert_allclose(prob, expected, rtol=1e-4, atol=1e-6)


def test_mlp_with_dynamic_batch_matches_numpy():
    weights = mlp.make_weights()
    engine = mlp.build_engine(weights)
    for batch in (1, 5, 64):
        x = np.random.default_rng(batch).standard_normal((batch, mlp.SIZES[0])).astype(np.float32)
        h = x.astype(np.float64)
        for i, (w, b) in enumerate(weights):
            h = h @ w + b
            if i < len(weights) - 1:
                h = np.maximum(h, 0)
        np.testing.assert_allclose(mlp.infer(engine, x), h, rtol=1e-4, atol=1e-5)
