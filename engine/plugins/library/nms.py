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

from engine.plugins.dimensions import DimsExprs
from engine.plugins.interfaces import PluginFieldType
from engine.plugins.library.base import LibraryPlugin, register_library_plugin
from engine.types import DataType


def _corners(boxes: np.ndarray, box_coding: int) -> np.ndarray:
    if box_coding == 0:
        return boxes
    x, y, w, h = np.moveaxis(boxes, -1, 0)
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=-1)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (np.minimum(box[0], box[2]), np.minimum(box[1], box[3]),
                      np.maximum(box[0], box[2]), np.maximum(box[1], box[3]))
    ox1, oy1 = np.minimum(others[:, 0], others[:, 2]), np.minimum(others[:, 1], others[:, 3])
    ox2, oy2 = np.maximum(others[:, 0], others[:, 2]), np.maximum(others[:, 1], others[:, 3])
    iw = np.clip(np.minimum(x2, ox2) - np.maximum(x1, ox1), 0, None)
    ih = np.clip(np.minimum(y2, oy2) - np.maximum(y1, oy1), 0, None)
    inter = iw * ih
    union = (x2 - x1) * (y2 - y1) + (ox2 - ox1) * (oy2 - oy1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def efficient_nms(boxes: np.ndarray, scores: np.ndarray, *, score_threshold: float,
                  iou_threshold: float, max_output_boxes: int, background_class: int,
                  score_activation: int, class_agnostic: int, box_coding: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    batch, count, classes = scores.shape
    scores = scores.astype(np.float32)
    if score_activation:
        scores = 1.0 / (1.0 + np.exp(-scores))
    num = np.zeros((batch, 1), np.int32)
    out_boxes = np.zeros((batch, max_output_boxes, 4), boxes.dtype)
    out_scores = np.zeros((batch, max_output_boxes), scores.dtype)
    out_classes = np.zeros((batch, max_output_boxes), np.int32)
    for b in range(batch):
        per_class = boxes[b] if boxes.ndim == 4 else np.repeat(boxes[b][:, None], classes, 1)
        corners = _corners(per_class.astype(np.float32), box_coding)
        keep_mask = scores[b] > score_threshold
        if 0 <= background_class < classes:
            keep_mask[:, background_class] = False
        box_index, class_index = np.nonzero(keep_mask)
        order = np.argsort(-scores[b][box_index, class_index], kind="stable")
        kept: list[tuple[int, int]] = []
        for i in order:
            if len(kept) == max_output_boxes:
                break
            bi, ci = int(box_index[i]), int(class_index[i])
            rivals = [(kb, kc) for kb, kc in kept if class_agnostic or kc == ci]
            if rivals:
                ious = _iou(corners[bi, ci], np.array([corners[kb, kc] for kb, kc in rivals]))
                if np.any(ious > iou_threshold):
                    continue
            kept.append((bi, ci))
        num[b, 0] = len(kept)
        for slot, (bi, ci) in enumerate(kept):
            out_boxes[b, slot] = per_class[bi, ci]
            out_scores[b, slot] = scores[b, bi, ci]
            out_classes[b, slot] = ci
    return num, out_boxes, out_scores, out_classes


@register_library_plugin
class EfficientNMSPlugin(LibraryPlugin):
    NAME = "EfficientNMS_TRT"
    enqueue_takes_host_arrays = True  # computed on the host on either target
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
            np.asarray(inputs[0]), np.asarray(inputs[1]),
            score_threshold=self.score_threshold, iou_threshold=self.iou_threshold,
            max_output_boxes=self.max_output_boxes, background_class=self.background_class,
            score_activation=self.score_activation, class_agnostic=self.class_agnostic,
            box_coding=self.box_coding)
        for out, value in zip(outputs, results):
            out[...] = value
