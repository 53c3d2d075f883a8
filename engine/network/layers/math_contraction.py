"""Contractions: ``IMatrixMultiplyLayer`` (batched matrix and vector products) and
``IEinsumLayer`` (Einstein summation over one or two inputs)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from engine.network.layer import ILayer, LayerType, TensorInfo, attribute_enum
from engine.network.layers.math_types import FLOATS, require_dtype, require_same_dtype
from engine.network.shapes import broadcast_shapes
from engine.types import DataType

if TYPE_CHECKING:
    from engine.network.definition import INetworkDefinition
    from engine.network.tensor import ITensor


@attribute_enum
class MatrixOperation(enum.IntEnum):
    """How ``IMatrixMultiplyLayer`` reads an input: as matrices in its last two dimensions
    (NONE), as their transposes (TRANSPOSE), or as vectors in its last dimension (VECTOR)."""

    NONE = 0
    TRANSPOSE = 1
    VECTOR = 2


MATMUL_TYPES = FLOATS | {DataType.FP8}


class IMatrixMultiplyLayer(ILayer):
    """``op0(input 0) @ op1(input 1)``; the dimensions before the matrix or vector ones are
    batch dimensions, equal in number on both sides, broadcast where one is 1."""

    type = LayerType.MATRIX_MULTIPLY
    _attributes: ClassVar[tuple[str, ...]] = ("op0", "op1")
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, input0: ITensor, op0: MatrixOperation,
                 input1: ITensor, op1: MatrixOperation) -> None:
        super().__init__(network, [input0, input1])
        self.op0 = MatrixOperation(op0)
        self.op1 = MatrixOperation(op1)

    def _split(self, index: int, info: TensorInfo, op: MatrixOperation
               ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(batch dims, [rows, cols] or [length]) of one operand after its operation."""
        core = 1 if op == MatrixOperation.VECTOR else 2
        if info.rank < core:
            self.fail(f"input {index} has rank {info.rank}; with op{index} = {op.name} it needs "
                      f"at least {core}")
        batch, dims = info.shape[:info.rank - core], info.shape[info.rank - core:]
        if op == MatrixOperation.TRANSPOSE:
            dims = dims[::-1]
        return batch, dims

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        a, b = self.require_inputs(inputs, 2)
        require_same_dtype(self, ("input 0", "input 1"), a.dtype, b.dtype)
        require_dtype(self, "input 0", a.dtype, MATMUL_TYPES)
        op0, op1 = MatrixOperation(self.op0), MatrixOperation(self.op1)
        batch_a, dims_a = self._split(0, a, op0)
        batch_b, dims_b = self._split(1, b, op1)
        if len(batch_a) != len(batch_b):
            self.fail(f"input 0 {a.shape} ({op0.name}) has {len(batch_a)} batch dimensions but "
                      f"input 1 {b.shape} ({op1.name}) has {len(batch_b)}; they must match")
        try:
            batch = broadcast_shapes(batch_a, batch_b)
        except ValueError as exc:
            self.fail(f"batch dimensions: {exc}")
        k_a = dims_a[-1]
        k_b = dims_b[0]
        if k_a != -1 and k_b != -1 and k_a != k_b:
            self.fail(f"inner dimensions differ: input 0 {a.shape} ({op0.name}) gives {k_a}, "
                      f"input 1 {b.shape} ({op1.name}) gives {k_b}")
        rows = dims_a[:-1]  # () for a vector
        cols = dims_b[1:]
        return [TensorInfo(batch + rows + cols, a.dtype)]


@dataclass(frozen=True)
class EinsumEquation:
    """A parsed equation: the subscripts of each input and of the output."""

    inputs: tuple[str, ...]
    output: str

    @property
    def numpy_form(self) -> str:
        return ",".join(self.inputs) + "->" + self.output


def parse_einsum(equation: str) -> EinsumEquation:
    """Parse ``equation`` as TensorRT reads it; ``ValueError`` says what is wrong.

    Subscripts are lowercase ASCII letters, spaces are ignored, and without ``->`` the output
    is the letters that appear once, in alphabetical order. TensorRT supports neither
    ellipses nor a letter repeated within one input (diagonals).
    """
    text = equation.replace(" ", "")
    if "..." in text:
        raise ValueError(f"equation {equation!r}: ellipsis ('...') is not supported")
    lhs, arrow, rhs = text.partition("->")
    if "->" in rhs:
        raise ValueError(f"equation {equation!r} has more than one '->'")
    terms = tuple(lhs.split(","))
    for term in terms + ((rhs,) if arrow else ()):
        bad = sorted({c for c in term if not ("a" <= c <= "z")})
        if bad:
            raise ValueError(f"equation {equation!r}: subscripts must be lowercase letters, "
                             f"found {bad}")
    for term in terms:
        repeated = sorted({c for c in term if term.count(c) > 1})
        if repeated:
            raise ValueError(f"equation {equation!r}: subscript(s) {repeated} repeat within "
                             f"the input term {term!r} (diagonals are not supported)")
    if arrow:
        output = rhs
        repeated = sorted({c for c in output if output.count(c) > 1})
        if repeated:
            raise ValueError(f"equation {equation!r}: output subscript(s) {repeated} repeat")
        unknown = sorted(set(output) - set("".join(terms)))
        if unknown:
            raise ValueError(f"equation {equation!r}: output subscript(s) {unknown} appear in "
                             f"no input")
    else:
        joined = "".join(terms)
        output = "".join(sorted(c for c in set(joined) if joined.count(c) == 1))
    return EinsumEquation(terms, output)


class IEinsumLayer(ILayer):
    """Einstein summation of one or two inputs written as ``equation``."""

    type = LayerType.EINSUM
    _attributes: ClassVar[tuple[str, ...]] = ("equation",)
    _max_inputs = 2

    def __init__(self, network: INetworkDefinition, inputs: Sequence[ITensor],
                 equation: str) -> None:
        super().__init__(network, list(inputs))
        self.equation = str(equation)

    def infer(self, inputs: list[TensorInfo | None]) -> list[TensorInfo]:
        if not 1 <= len(inputs) <= 2:
            self.fail(f"takes one or two inputs, got {len(inputs)}")
        infos = self.require_inputs(inputs, len(inputs))
        try:
            parsed = parse_einsum(self.equation)
        except ValueError as exc:
            self.fail(str(exc))
        if len(parsed.inputs) != len(infos):
            self.fail(f"equation {self.equation!r} has {len(parsed.inputs)} input term(s) but "
                      f"the layer has {len(infos)} input(s)")
        sizes: dict[str, int] = {}
        for index, (term, info) in enumerate(zip(parsed.inputs, infos)):
            require_dtype(self, f"input {index}", info.dtype, FLOATS)
            require_same_dtype(self, ("input 0", f"input {index}"), infos[0].dtype, info.dtype)
            if len(term) != info.rank:
                self.fail(f"term {term!r} names {len(term)} dimensions but input {index} has "
                          f"rank {info.rank} {info.shape}")
            for label, dim in zip(term, info.shape):
                known = sizes.get(label, -1)
                if dim != -1 and known != -1 and dim != known:
                    self.fail(f"subscript {label!r} is {known} in one place and {dim} in "
                              f"input {index} {info.shape}")
                if dim != -1:
                    sizes[label] = dim
        shape = tuple(sizes.get(label, -1) for label in parsed.output)
        return [TensorInfo(shape, infos[0].dtype)]
