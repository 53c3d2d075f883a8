"""A small CNN trained at test time, in NumPy, on scikit-learn's digits (8x8 images of
handwritten digits that ship with the package), and the ways the quantization tests build it.

conv 3x3 (1 -> 8, pad 1) -> ReLU -> conv 3x3 (8 -> 16, stride 2, pad 1) -> ReLU -> flatten
-> matrix multiply (256 -> 10) -> + bias: the logits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits


@dataclass(frozen=True)
class Digits:
    train_x: np.ndarray  # [N, 1, 8, 8] float32 in [0, 1]
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


@dataclass(frozen=True)
class Cnn:
    w1: np.ndarray  # [8, 1, 3, 3]
    b1: np.ndarray
    w2: np.ndarray  # [16, 8, 3, 3]
    b2: np.ndarray
    w3: np.ndarray  # [256, 10]
    b3: np.ndarray


@functools.lru_cache(maxsize=1)
def digits() -> Digits:
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    return Digits(x[:1400], y[:1400], x[1400:], y[1400:])


def _im2col(x: np.ndarray, stride: int) -> tuple[np.ndarray, int]:
    """Rows [N*P, C*9] of 3x3 windows of ``x`` padded by 1; returns them and the output size."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    n, c, h, w = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9), h


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int
          ) -> tuple[np.ndarray, np.ndarray]:
    cols, size = _im2col(x, stride)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.reshape(x.shape[0], size, size, -1).transpose(0, 3, 1, 2), cols


def forward(model: Cnn, x: np.ndarray) -> np.ndarray:
    """The logits, in NumPy (float32)."""
    h1 = np.maximum(_conv(x, model.w1, model.b1, 1)[0], 0)
    h2 = np.maximum(_conv(h1, model.w2, model.b2, 2)[0], 0)
    return h2.reshape(len(x), -1) @ model.w3 + model.b3


def _col2im_grad(dcols: np.ndarray, shape: tuple[int, ...], stride: int) -> np.ndarray:
    n, c, h, w = shape
    size = (h + 2 - 3) // stride + 1
    d = dcols.reshape(n, size, size, c, 3, 3)
    out = np.zeros((n, c, h + 2, w + 2), np.float32)
    for i in range(3):
        for j in range(3):
            out[:, :, i:i + stride * size:stride, j:j + stride * size:stride] += \
                d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return out[:, :, 1:-1, 1:-1]


@functools.lru_cache(maxsize=1)
def trained_cnn(epochs: int = 10, batch: int = 64) -> Cnn:
    """Train with Adam on the training split (deterministic)."""
    data = digits()
    rng = np.random.default_rng(1)
    params = [rng.standard_normal((8, 1, 3, 3)) * np.sqrt(2 / 9), np.zeros(8),
              rng.standard_normal((16, 8, 3, 3)) * np.sqrt(2 / 72), np.zeros(16),
              rng.standard_normal((256, 10)) * np.sqrt(2 / 256), np.zeros(10)]
    params = [p.astype(np.float32) for p in params]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(data.train_y))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            x, y = data.train_x[idx], data.train_y[idx]
            w1, b1, w2, b2, w3, b3 = params
            z1, cols1 = _conv(x, w1, b1, 1)
            h1 = np.maximum(z1, 0)
            z2, cols2 = _conv(h1, w2, b2, 2)
            h2 = np.maximum(z2, 0)
            flat = h2.reshape(len(x), -1)
            logits = flat @ w3 + b3
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(y)), y] -= 1
            dlogits = p / len(y)
            dw3, db3 = flat.T @ dlogits, dlogits.sum(0)
            dz2 = (dlogits @ w3.T).reshape(h2.shape) * (z2 > 0)
            dz2_rows = dz2.transpose(0, 2, 3, 1).reshape(-1, 16)
            dw2, db2 = (dz2_rows.T @ cols2).reshape(w2.shape), dz2_rows.sum(0)
            dh1 = _col2im_grad(dz2_rows @ w2.reshape(16, -1), h1.shape, 2)
            dz1 = dh1 * (z1 > 0)
            dz1_rows = dz1.transpose(0, 2, 3, 1).reshape(-1, 8)
            dw1, db1 = (dz1_rows.T @ cols1).reshape(w1.shape), dz1_rows.sum(0)
            step += 1
            for i, g in enumerate([dw1, db1, dw2, db2, dw3, db3]):
                moments[i] = 0.9 * moments[i] + 0.1 * g
                squares[i] = 0.999 * squares[i] + 0.001 * g * g
                m_hat = moments[i] / (1 - 0.9 ** step)
                v_hat = squares[i] / (1 - 0.999 ** step)
                params[i] = (params[i] - 0.005 * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(
                    np.float32)
    return Cnn(*params)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels) * 100)
