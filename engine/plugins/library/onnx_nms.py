"""``NonMaxSuppression_TRT``: ONNX's ``NonMaxSuppression`` (unlike ``EfficientNMS_TRT``: per
batch and class, boxes selected greedily by score, reported as [batch, class, box] index
triples), with fixed-size outputs. It runs ``INMSLayer``'s selection; the ONNX parser takes it
where that layer does not serve (dynamic dimensions, more candidates than its limit).

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

from engine.kernels.cpu.spatial_nms import select_boxes
from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import LibraryPlugin, array_module, register_library_plugin
from engine.types import DataType


def onnx_nms(boxes: Any, scores: Any, *, max_output_boxes_per_class: int,
             iou_threshold: float, score_threshold: float | None, center_point_box: int
             ) -> tuple[Any, Any]:
    """On NumPy or CuPy arrays: ``INMSLayer``'s selection (``select_boxes``, without its
    candidate limit) on the scores as [B, N, C], its rows regrouped by class."""
    xp = array_module(scores)
    batches, classes, count = scores.shape
    k = min(max_output_boxes_per_class, count)
    rows = select_boxes(xp, boxes, xp.moveaxis(scores, 1, 2),
                        max_per_class=max_output_boxes_per_class, iou_threshold=iou_threshold,
                        score_threshold=score_threshold, center_sizes=bool(center_point_box),
                        candidate_limit=None)
    selected = np.zeros((batches, classes, k, 3), np.int64)
    valid = np.zeros((batches, classes, k), bool)
    filled = np.zeros((batches, classes), np.int64)
    for b, c, box in rows:  # by batch, then score: in selection order within each class
        selected[b, c, filled[b, c]] = (b, c, box)
        valid[b, c, filled[b, c]] = True
        filled[b, c] += 1
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
