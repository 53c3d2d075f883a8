"""CPU kernel of the non-maximum suppression layer, and the selection itself on NumPy or CuPy
arrays (``xp``): overlaps are computed where the boxes are, the greedy pass reads them on the
host. The GPU kernel and the ``NonMaxSuppression_TRT`` plugin (ONNX's ordering) run the same
code; ``EfficientNMS_TRT`` shares its ranking and greedy pass."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType
from engine.network.layers.spatial_nms import BoundingBoxFormat, INMSLayer


def best_first(xp: Any, scores: Any) -> Any:
    """Positions of ``scores`` by descending score, ties by position."""
    return xp.lexsort(xp.stack([xp.arange(scores.size, dtype=xp.float64),
                                -scores.astype(xp.float64)]))


def greedy_keep(suppresses: np.ndarray, limit: int) -> list[int]:
    """Greedy suppression over candidates sorted best first: ``suppresses[i, j]`` says a kept
    candidate ``i`` removes candidate ``j``; the positions kept, at most ``limit``."""
    removed = np.zeros(len(suppresses), bool)
    kept: list[int] = []
    for i in range(len(suppresses)):
        if len(kept) == limit:
            break
        if removed[i]:
            continue
        kept.append(i)
        removed |= suppresses[i]
    return kept


def box_corners(xp: Any, boxes: Any, center_sizes: bool) -> Any:
    """Boxes [..., 4] as [low0, low1, high0, high1] (float64): two diagonal corners in either
    order, or a centre and sizes (IoU does not care which axis comes first)."""
    b = boxes.astype(xp.float64)
    p0, p1, q0, q1 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if center_sizes:
        return xp.stack([p0 - q0 / 2, p1 - q1 / 2, p0 + q0 / 2, p1 + q1 / 2], axis=-1)
    return xp.stack([xp.minimum(p0, q0), xp.minimum(p1, q1), xp.maximum(p0, q0),
                     xp.maximum(p1, q1)], axis=-1)


def overlaps_above(xp: Any, corners: Any, threshold: float) -> Any:
    """Whether the IoU of each pair of boxes (``box_corners``) is above ``threshold``, where
    boxes that do not intersect, or an empty box, never count (ONNX's rule): [n, n]."""
    iw = xp.minimum(corners[:, None, 2], corners[None, :, 2]) - \
        xp.maximum(corners[:, None, 0], corners[None, :, 0])
    ih = xp.minimum(corners[:, None, 3], corners[None, :, 3]) - \
        xp.maximum(corners[:, None, 1], corners[None, :, 1])
    inter = xp.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    union = area[:, None] + area[None] - inter
    ok = (inter > 0) & (area[:, None] > 0) & (area[None] > 0) & (union > 0)
    return ok & (inter / xp.where(ok, union, 1.0) > threshold)


def _host(xp: Any, array: Any) -> np.ndarray:
    return np.asarray(array) if xp is np else xp.asnumpy(array)


def select_boxes(xp: Any, boxes: Any, scores: Any, *, max_per_class: int,
                 iou_threshold: float, score_threshold: float | None, center_sizes: bool,
                 candidate_limit: int | None) -> np.ndarray:
    """Non-maximum suppression per batch item and class: the selected (batch, class, box)
    rows, a host INT64 array [count, 3], by batch, then by descending score (equal scores by
    box, then class), the order in which they were selected.

    ``boxes`` [B, N, 4] (shared by the classes) or [B, N, C, 4], ``scores`` [B, N, C]. Per
    batch item, the (box, class) pairs scoring above ``score_threshold`` (all, if None) are
    ranked and the best ``candidate_limit`` (all, if None) kept; a candidate is selected
    unless its class has ``max_per_class`` boxes already or it overlaps a selected box of its
    class with an IoU above ``iou_threshold``."""
    batches, _, classes = scores.shape
    rows = [np.zeros((0, 3), np.int64)]
    for b in range(batches):
        flat = scores[b].reshape(-1)  # position = box * classes + class
        order = best_first(xp, flat)
        if score_threshold is not None:
            order = order[flat[order] > score_threshold]
        if candidate_limit is not None:
            order = order[:candidate_limit]
        box_of, class_of = np.divmod(_host(xp, order), classes)
        corners = box_corners(xp, boxes[b], center_sizes)
        kept: list[int] = []
        for c in np.unique(class_of) if max_per_class > 0 else ():
            positions = np.flatnonzero(class_of == c)
            chosen = xp.asarray(box_of[positions])
            candidates = corners[chosen] if corners.ndim == 2 else corners[chosen, int(c)]
            suppresses = _host(xp, overlaps_above(xp, candidates, iou_threshold))
            kept.extend(positions[greedy_keep(suppresses, max_per_class)])
        kept.sort()
        rows.append(np.stack([np.full(len(kept), b), class_of[kept], box_of[kept]], axis=1))
    return np.concatenate(rows).astype(np.int64)


def nms_outputs(xp: Any, layer: INMSLayer, boxes: Any, scores: Any,
                scalars: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """The layer's two outputs as host arrays (SelectedIndices, NumOutputBoxes), from its box
    and score arrays and its scalar inputs (2, 3 and 4) read on the host."""
    limit, iou, score = scalars + [None] * (3 - len(scalars))
    assert limit is not None
    rows = select_boxes(
        xp, boxes, scores, max_per_class=int(limit),
        iou_threshold=0.0 if iou is None else float(iou),
        score_threshold=0.0 if score is None else float(score),
        center_sizes=layer.bounding_box_format == BoundingBoxFormat.CENTER_SIZES,
        candidate_limit=layer.topk_box_limit)
    return rows.astype(np.int32), np.array(len(rows), np.int32)


@kernel(LayerType.NMS, backend="cpu", name="cpu.nms")
def nms(layer: ILayer, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    assert isinstance(layer, INMSLayer)
    boxes, scores, *scalars = inputs
    return list(nms_outputs(np, layer, boxes, scores, scalars))
