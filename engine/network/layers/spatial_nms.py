"""The non-maximum suppression layer (TensorRT's ``INMSLayer``): per batch item and class, the
boxes kept greedily by score, dropping those that overlap a kept one too much."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.network.layers.math_types import FLOATS, require_dtype, require_same_dtype
from engine.network.layers.shape_gather import INDEX_TYPES
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor

# TensorRT's limit on the candidates considered per batch item (2000 on SM 5.3 and 6.2).
MAX_TOPK_BOX_LIMIT = 5000


@attribute_enum
class BoundingBoxFormat(enum.IntEnum):
    """How ``INMSLayer`` reads the 4 numbers of a box."""

    CORNER_PAIRS = 0  # (x1, y1, x2, y2): any pair of diagonal corners
    CENTER_SIZES = 1  # (x_center, y_center, width, height)


_COERCE = {"bounding_box_format": BoundingBoxFormat, "topk_box_limit": int}
_OPTIONAL_INPUTS = {3: "IoUThreshold (input 3)", 4: "ScoreThreshold (input 4)"}


class INMSLayer(ILayer):
    """Non-maximum suppression: ``add_nms(boxes, scores, max_output_boxes_per_class)``.

    Inputs: ``boxes`` [batch, boxes, 4], shared by the classes, or [batch, boxes, classes, 4];
    ``scores`` [batch, boxes, classes] of the same type (FLOAT, HALF or BF16);
    ``MaxOutputBoxesPerClass`` a 0-D INT32 tensor; with ``set_input``, 3: ``IoUThreshold`` and
    4: ``ScoreThreshold``, 0-D FLOAT tensors (default 0).

    Per batch item, the (box, class) candidates whose score exceeds the score threshold are
    ranked by score (without regard to class) and the best ``topk_box_limit`` considered; each
    is selected unless it is of a class that already has ``MaxOutputBoxesPerClass`` boxes, or
    its IoU with a selected box of its class is above the IoU threshold.

    Outputs: ``SelectedIndices`` [NumOutputBoxes, 3] INT32 rows (batch, class, box), by
    increasing batch, then decreasing score (equal scores: by box, then class), and
    ``NumOutputBoxes``, a 0-D INT32 tensor. The row count is data dependent: read it through
    ``context.infer`` or an ``IOutputAllocator``.

    >>> import engine as trt, numpy as np
    >>> network = trt.Builder(trt.Logger()).create_network(0)
    >>> boxes = network.add_input("boxes", trt.float32, (1, 100, 4))
    >>> scores = network.add_input("scores", trt.float32, (1, 100, 3))
    >>> limit = network.add_constant((), np.array(10, np.int32)).get_output(0)
    >>> layer = network.add_nms(boxes, scores, limit)
    >>> layer.bounding_box_format = trt.BoundingBoxFormat.CENTER_SIZES
    >>> tuple(layer.get_output(0).shape), tuple(layer.get_output(1).shape)
    ((-1, 3), ())
    """

    type = LayerType.NMS
    _attributes: ClassVar[tuple[str, ...]] = ("bounding_box_format", "topk_box_limit")
    _max_inputs = 5

    def __init__(self, network: INetworkDefinition, boxes: ITensor, scores: ITensor,
                 max_output_boxes_per_class: ITensor) -> None:
        super().__init__(network, [boxes, scores, max_output_boxes_per_class], num_outputs=2)
        self.bounding_box_format = BoundingBoxFormat.CORNER_PAIRS
        self.topk_box_limit = MAX_TOPK_BOX_LIMIT

    def __setattr__(self, key: str, value: Any) -> None:
        convert = _COERCE.get(key)
        super().__setattr__(key, value if convert is None else convert(value))

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        boxes, scores, limit = self.require_inputs(inputs, 3)
        if not 0 <= self.topk_box_limit <= MAX_TOPK_BOX_LIMIT:
            self.fail(f"topk_box_limit is {self.topk_box_limit}; it must be in "
                      f"[0, {MAX_TOPK_BOX_LIMIT}]")
        require_dtype(self, "boxes (input 0)", boxes.dtype, FLOATS)
        require_same_dtype(self, ("boxes (input 0)", "scores (input 1)"), boxes.dtype,
                           scores.dtype)
        if boxes.rank not in (3, 4) or boxes.shape[-1] not in (4, -1):
            self.fail(f"boxes must be [batch, boxes, 4] or [batch, boxes, classes, 4], got "
                      f"shape {boxes.shape}")
        if scores.rank != 3:
            self.fail(f"scores must be [batch, boxes, classes], got shape {scores.shape}")
        for axis, what in enumerate(("batch size", "box count", "class count")[:boxes.rank - 1]):
            if min(boxes.shape[axis], scores.shape[axis]) >= 0 and \
                    boxes.shape[axis] != scores.shape[axis]:
                self.fail(f"boxes {boxes.shape} and scores {scores.shape} differ in "
                          f"{what}")
        if limit.rank != 0 or limit.dtype != DataType.INT32:
            self.fail(f"MaxOutputBoxesPerClass (input 2) must be a 0-D INT32 tensor, got "
                      f"{limit.dtype.name} of shape {limit.shape}")
        for index, what in _OPTIONAL_INPUTS.items():
            given = inputs[index] if index < len(inputs) else None
            if given is not None and (given.rank != 0 or given.dtype != DataType.FLOAT):
                self.fail(f"{what} must be a 0-D FLOAT tensor, got {given.dtype.name} of "
                          f"shape {given.shape}")
        indices_type = self._output_types.get(0, DataType.INT32)
        if indices_type not in INDEX_TYPES:
            self.fail(f"SelectedIndices (output 0) must be INT32 or INT64, not "
                      f"{indices_type.name}")
        return [TensorInfo((-1, 3), DataType.INT32), TensorInfo((), DataType.INT32)]
