"""``NonMaxSuppression_TRT``: ONNX's ``NonMaxSuppression`` (unlike ``EfficientNMS_TRT``: per
batch and class, boxes selected greedily by score, reported as [batch, class, box] index
triples), with fixed-size outputs.

Inputs: ``boxes`` [B, N, 4], ``scores`` [B, C, N]. Outputs: ``selected`` [B * C * K, 3] INT64
and ``valid`` [B * C * K] BOOL, K = min(``max_output_boxes_per_class``, N): block (b, c) holds
that class's selections first, in selection order, then rows of zeros marked invalid; the
valid rows, in order, are ONNX's ``selected_indices``. Fields: ``max_output_boxes_per_class``,
``iou_threshold`` (a box is dropped when its IoU with a selected one is above it),
``score_threshold`` with ``has_score_threshold`` (0: no score filter; 1: only scores above
it), ``center_point_box`` (0: boxes are corners [y1, x1, y2, x2] in either order; 1: centre
and size [x, y, w, h]).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import (
    LibraryPlugin,
    array_module,
    host_numpy,
    register_library_plugin,
)
from engine.plugins.library.nms import best_first, greedy_keep
from engine.types import DataType


def _corners(xp: Any, boxes: Any, center_point_box: int) -> Any:
    """[x_min, y_min, x_max, y_max] of each box (float64)."""
    b = boxes.astype(xp.float64)
    if center_point_box:
        x, y, w, h = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        return xp.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1)
    y1, x1, y2, x2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return xp.stack([xp.minimum(x1, x2), xp.minimum(y1, y2), xp.maximum(x1, x2),
                     xp.maximum(y1, y2)], axis=1)


def _overlaps(xp: Any, boxes: Any, threshold: float) -> Any:
    """Whether the IoU of each pair of ``boxes`` is above ``threshold`` (ONNX's rule: no
    overlap, or an empty box, never suppresses): [n, n]."""
    iw = xp.minimum(boxes[:, None, 2], boxes[None, :, 2]) - \
        xp.maximum(boxes[:, None, 0], boxes[None, :, 0])
    ih = xp.minimum(boxes[:, None, 3], boxes[None, :, 3]) - \
        xp.maximum(boxes[:, None, 1], boxes[None, :, 1])
    inter = xp.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area[:, None] + area[None] - inter
    ok = (inter > 0) & (area[:, None] > 0) & (area[None] > 0) & (union > 0)
    return ok & (inter / xp.where(ok, union, 1.0) > threshold)


def onnx_nms(boxes: Any, scores: Any, *, max_output_boxes_per_class: int,
             iou_threshold: float, score_threshold: float | None, center_point_box: int
             ) -> tuple[Any, Any]:
    """On NumPy or CuPy arrays: overlaps are computed where the boxes are; the greedy pass
    reads them on the host."""
    xp = array_module(scores)
    batches, classes, count = scores.shape
    k = min(max_output_boxes_per_class, count)
    selected = np.zeros((batches, classes, k, 3), np.int64)
    valid = np.zeros((batches, classes, k), bool)
    for b in range(batches):
        corners = _corners(xp, boxes[b], center_point_box)
        for c in range(classes):
            s = scores[b, c]
            order = best_first(xp, s)
            if score_threshold is not None:
                order = order[s[order] > score_threshold]
            order_host = host_numpy(order)
            kept = order_host[greedy_keep(host_numpy(
                _overlaps(xp, corners[order], iou_threshold)), k)]
            selected[b, c, :len(kept)] = [(b, c, int(i)) for i in kept]
            valid[b, c, :len(kept)] = True
    return xp.asarray(selected.reshape(-1, 3)), xp.asarray(valid.reshape(-1))


@register_library_plugin
class NonMaxSuppressionPlugin(LibraryPlugin):
    NAME = "NonMaxSuppression_TRT"
    # Computed where the inputs are; the greedy pass reads the overlaps on the host.
    host_synchronizing = True
    num_outputs = 2
    FIELDS = {
        "max_output_boxes_per_class": (PluginFieldType.INT32, 0),
        "iou_threshold": (PluginFieldType.FLOAT32, 0.0),
        "score_threshold": (PluginFieldType.FLOAT32, 0.0),
        "has_score_threshold": (PluginFieldType.INT32, 0),
        "center_point_box": (PluginFieldType.INT32, 0),
    }

    def check(self) -> None:
        if self.max_output_boxes_per_class < 0 or self.center_point_box not in (0, 1):
            raise ValueError("NonMaxSuppression_TRT: max_output_boxes_per_class must be >= 0 "
                             "and center_point_box 0 or 1")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType.INT64, DataType.BOOL]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 2 or len(inputs[0]) != 3 or len(inputs[1]) != 3:
            raise ValueError("NonMaxSuppression_TRT takes boxes [B, N, 4] and scores [B, C, N]")
        batches, classes, count = (inputs[1][i].value for i in range(3))
        if min(batches, classes, count) < 0:
            raise ValueError("NonMaxSuppression_TRT needs static score dimensions")
        rows = batches * classes * min(self.max_output_boxes_per_class, count)
        return [DimsExprs([rows, 3]), DimsExprs([rows])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        selected, valid = onnx_nms(
            inputs[0], inputs[1],
            max_output_boxes_per_class=self.max_output_boxes_per_class,
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold if self.has_score_threshold else None,
            center_point_box=self.center_point_box)
        outputs[0][...] = selected
        outputs[1][...] = valid
