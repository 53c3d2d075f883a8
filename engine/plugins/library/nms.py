"""``EfficientNMS_TRT``: non-maximum suppression over a batch of boxes, with fixed-size,
zero-padded outputs.

Inputs: ``boxes`` [batch, boxes, 4] (shared by all classes) or [batch, boxes, classes, 4],
``scores`` [batch, boxes, classes]. Outputs: ``num_detections`` [batch, 1] INT32,
``detection_boxes`` [batch, max_output_boxes, 4], ``detection_scores`` [batch,
max_output_boxes], ``detection_classes`` [batch, max_output_boxes] INT32.

Detections are ordered by score. A candidate is dropped when its score is not above
``score_threshold``, when its class is ``background_class``, or when its IoU with a detection
already kept of the same class (any class with ``class_agnostic``) exceeds
``iou_threshold``. ``score_activation`` applies a sigmoid to the scores first;
``box_coding`` 0 reads boxes as corners [x1, y1, x2, y2], 1 as centre and size [x, y, w, h]
(output boxes keep the input's coding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.kernels.cpu.spatial_nms import best_first, greedy_keep
from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import (
    LibraryPlugin,
    array_module,
    host_numpy,
    register_library_plugin,
)
from engine.types import DataType


def _corners(xp: Any, boxes: Any, box_coding: int) -> Any:
    if box_coding == 0:
        return boxes
    x, y, w, h = (boxes[..., i] for i in range(4))
    return xp.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=-1)


def _pairwise_iou(xp: Any, boxes: Any) -> Any:
    """The IoU of every pair of ``boxes`` [n, 4] (corners in either order): [n, n]."""
    x1, y1 = xp.minimum(boxes[:, 0], boxes[:, 2]), xp.minimum(boxes[:, 1], boxes[:, 3])
    x2, y2 = xp.maximum(boxes[:, 0], boxes[:, 2]), xp.maximum(boxes[:, 1], boxes[:, 3])
    iw = xp.maximum(xp.minimum(x2[:, None], x2[None]) - xp.maximum(x1[:, None], x1[None]), 0)
    ih = xp.maximum(xp.minimum(y2[:, None], y2[None]) - xp.maximum(y1[:, None], y1[None]), 0)
    inter = iw * ih
    area = (x2 - x1) * (y2 - y1)
    union = area[:, None] + area[None] - inter
    return xp.where(union > 0, inter / xp.where(union > 0, union, 1), 0.0)


def efficient_nms(boxes: Any, scores: Any, *, score_threshold: float,
                  iou_threshold: float, max_output_boxes: int, background_class: int,
                  score_activation: int, class_agnostic: int, box_coding: int
                  ) -> tuple[Any, Any, Any, Any]:
    """On NumPy or CuPy arrays: the IoUs are computed where the boxes are; the greedy pass
    reads which candidates suppress which on the host."""
    xp = array_module(scores)
    batch, count, classes = scores.shape
    scores = scores.astype(xp.float32)
    if score_activation:
        scores = 1.0 / (1.0 + xp.exp(-scores))
    num = np.zeros((batch, 1), np.int32)
    out_boxes = xp.zeros((batch, max_output_boxes, 4), boxes.dtype)
    out_scores = xp.zeros((batch, max_output_boxes), scores.dtype)
    out_classes = xp.zeros((batch, max_output_boxes), xp.int32)
    for b in range(batch):
        per_class = boxes[b] if boxes.ndim == 4 else xp.repeat(boxes[b][:, None], classes, 1)
        corners = _corners(xp, per_class.astype(xp.float32), box_coding)
        keep_mask = scores[b] > score_threshold
        if 0 <= background_class < classes:
            keep_mask[:, background_class] = False
        box_index, class_index = xp.nonzero(keep_mask)
        order = best_first(xp, scores[b][box_index, class_index])
        box_index, class_index = box_index[order], class_index[order]
        suppresses = _pairwise_iou(xp, corners[box_index, class_index]) > iou_threshold
        if not class_agnostic:
            suppresses &= class_index[:, None] == class_index[None]
        kept = greedy_keep(host_numpy(suppresses), max_output_boxes)
        num[b, 0] = len(kept)
        if kept:
            picked = xp.asarray(np.array(kept, np.int64))
            bi, ci = box_index[picked], class_index[picked]
            out_boxes[b, :len(kept)] = per_class[bi, ci]
            out_scores[b, :len(kept)] = scores[b, bi, ci]
            out_classes[b, :len(kept)] = ci
    return xp.asarray(num), out_boxes, out_scores, out_classes


@register_library_plugin
class EfficientNMSPlugin(LibraryPlugin):
    NAME = "EfficientNMS_TRT"
    # Computed where the inputs are; the greedy pass reads the suppression matrix on the host.
    host_synchronizing = True
    FIELDS = {
        "score_threshold": (PluginFieldType.FLOAT32, 0.0),
        "iou_threshold": (PluginFieldType.FLOAT32, 0.5),
        "max_output_boxes": (PluginFieldType.INT32, 100),
        "background_class": (PluginFieldType.INT32, -1),
        "score_activation": (PluginFieldType.INT32, 0),
        "class_agnostic": (PluginFieldType.INT32, 0),
        "box_coding": (PluginFieldType.INT32, 0),
    }
    num_outputs = 4

    def check(self) -> None:
        if self.max_output_boxes <= 0:
            raise ValueError(f"EfficientNMS_TRT: max_output_boxes must be > 0, got "
                             f"{self.max_output_boxes}")
        if self.box_coding not in (0, 1):
            raise ValueError(f"EfficientNMS_TRT: box_coding must be 0 (corners) or 1 (centre "
                             f"and size), got {self.box_coding}")

    def get_output_data_types(self, input_types: Sequence[DataType]) -> list[DataType]:
        return [DataType.INT32, DataType(input_types[0]), DataType(input_types[1]),
                DataType.INT32]

    def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Sequence[Any],
                          exprBuilder: Any) -> list[Any]:  # noqa: N803
        if len(inputs) != 2:
            raise ValueError(f"EfficientNMS_TRT takes boxes and scores (2 inputs; the fused "
                             f"box decoder with anchors is not supported), got {len(inputs)}")
        boxes, scores = inputs
        if len(scores) != 3 or len(boxes) not in (3, 4) or boxes[-1].value not in (4, -1):
            raise ValueError(f"EfficientNMS_TRT: boxes must be [batch, boxes, (classes,) 4] and "
                             f"scores [batch, boxes, classes], got {DimsExprs(boxes).values()} "
                             f"and {DimsExprs(scores).values()}")
        batch, top = scores[0], self.max_output_boxes
        return [DimsExprs([batch, 1]), DimsExprs([batch, top, 4]), DimsExprs([batch, top]),
                DimsExprs([batch, top])]

    def enqueue(self, input_desc: Sequence[Any], output_desc: Sequence[Any],
                inputs: Sequence[Any], outputs: Sequence[Any], workspace: Any,
                stream: int) -> None:
        results = efficient_nms(
            inputs[0], inputs[1],
            score_threshold=self.score_threshold, iou_threshold=self.iou_threshold,
            max_output_boxes=self.max_output_boxes, background_class=self.background_class,
            score_activation=self.score_activation, class_agnostic=self.class_agnostic,
            box_coding=self.box_coding)
        for out, value in zip(outputs, results):
            out[...] = value
