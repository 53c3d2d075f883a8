"""GPU kernel of the fused pointwise layer: its program (a list of elementwise, unary,
activation and cast steps held as data) is turned into the C body of ONE CuPy
``ElementwiseKernel`` (compiled by NVRTC on first use), cached by the program's signature and
the element types. Every step is computed per output element in registers: floats (HALF
included) in float32, integers and booleans exactly; inputs broadcast as NumPy does.

``activation_expression`` is shared with the GEMM epilogues (``fused_conv.py``).
"""

from __future__ import annotations

import cupy

from engine.kernels.registry import kernel
from engine.network.layer import ILayer, LayerType, TensorInfo
from engine.network.layers.fused_pointwise import IFusedPointwiseLayer, step_operands
from engine.types import DataType, from_numpy_dtype, nptype


class UnsupportedStepError(Exception):
    """A program step this code generator has no C form for (the tactic refuses the layer)."""


def activation_expression(kind: str, v: str, alpha: float, beta: float) -> str:
    """The C expression of activation ``kind`` (an ``ActivationType`` name) of float ``v``."""
    a, b = f"{float(alpha)!r}f", f"{float(beta)!r}f"
    forms = {
        "RELU": f"fmaxf({v}, 0.f)",
        "SIGMOID": f"(1.f / (1.f + expf(-{v})))",
        "TANH": f"tanhf({v})",
        "LEAKY_RELU": f"({v} >= 0.f ? {v} : {a} * {v})",
        "ELU": f"({v} >= 0.f ? {v} : {a} * (expf({v}) - 1.f))",
        "SELU": f"({v} > 0.f ? {b} * {v} : {b} * ({a} * expf({v}) - {a}))",
        "SOFTSIGN": f"({v} / (1.f + fabsf({v})))",
        "SOFTPLUS": f"({a} * log1pf(expf({b} * {v})))",
        "CLIP": f"fmaxf({a}, fminf({b}, {v}))",
        "HARD_SIGMOID": f"fmaxf(0.f, fminf(1.f, {a} * {v} + {b}))",
        "SCALED_TANH": f"({a} * tanhf({b} * {v}))",
        "THRESHOLDED_RELU": f"({v} > {a} ? {v} : 0.f)",
        "GELU_ERF": f"(0.5f * {v} * (1.f + erff({v} * 0.70710678118654752f)))",
        "GELU_TANH": f"(0.5f * {v} * (1.f + tanhf(0.79788456080286536f * "
                     f"(0.044715f * {v} * {v} * {v} + {v}))))",
    }
    if kind not in forms:
        raise UnsupportedStepError(f"activation {kind}")
    return forms[kind]


# C type each DataType is computed in, and the CuPy parameter type it is stored as.
_COMPUTE = {DataType.FLOAT: "float", DataType.HALF: "float", DataType.INT32: "int",
            DataType.INT64: "long long", DataType.BOOL: "bool"}
_PARAM = {DataType.FLOAT: "float32", DataType.HALF: "float16", DataType.INT32: "int32",
          DataType.INT64: "int64", DataType.BOOL: "bool"}

_FLOAT_UNARY = {
    "EXP": "expf({x})", "LOG": "logf({x})", "SQRT": "sqrtf({x})", "RECIP": "(1.f / {x})",
    "ABS": "fabsf({x})", "NEG": "(-{x})", "SIN": "sinf({x})", "COS": "cosf({x})",
    "TAN": "tanf({x})", "SINH": "sinhf({x})", "COSH": "coshf({x})", "ASIN": "asinf({x})",
    "ACOS": "acosf({x})", "ATAN": "atanf({x})", "ASINH": "asinhf({x})",
    "ACOSH": "acoshf({x})", "ATANH": "atanhf({x})", "CEIL": "ceilf({x})",
    "FLOOR": "floorf({x})", "ERF": "erff({x})", "ROUND": "rintf({x})",
    "SIGN": "(float)(({x} > 0.f) - ({x} < 0.f))",
}
_INTEGER_UNARY = {"ABS": "({x} < 0 ? -{x} : {x})", "NEG": "(-{x})",
                  "SIGN": "(({x} > 0) - ({x} < 0))"}
_COMPARISONS = {"EQUAL": "==", "GREATER": ">", "LESS": "<"}
_LOGICAL = {"AND": "&&", "OR": "||", "XOR": "!="}


def _elementwise(op: str, a: str, b: str, ctype: str) -> tuple[str, str]:
    """The C expression and result C type of ``a op b`` on values of ``ctype``."""
    if op in _COMPARISONS:
        return f"({a} {_COMPARISONS[op]} {b})", "bool"
    if op in _LOGICAL:
        return f"((bool){a} {_LOGICAL[op]} (bool){b})", "bool"
    is_float = ctype == "float"
    simple = {"SUM": f"({a} + {b})", "SUB": f"({a} - {b})", "PROD": f"({a} * {b})",
              "MAX": f"({a} > {b} ? {a} : {b})", "MIN": f"({a} < {b} ? {a} : {b})"}
    if op in simple:
        if is_float and op in ("MAX", "MIN"):
            return (f"fmaxf({a}, {b})" if op == "MAX" else f"fminf({a}, {b})"), ctype
        return simple[op], ctype
    if is_float:
        forms = {"DIV": f"({a} / {b})", "POW": f"powf({a}, {b})",
                 "FLOOR_DIV": f"floorf({a} / {b})"}
    else:  # C division truncates; FLOOR_DIV rounds toward minus infinity; x / 0 gives 0
        forms = {"DIV": f"({b} == 0 ? ({ctype})0 : {a} / {b})",
                 "FLOOR_DIV": f"({b} == 0 ? ({ctype})0 : ({a} / {b} - "
                              f"((({a} % {b}) != 0) && (({a} < 0) != ({b} < 0)))))"}
    if op not in forms:
        raise UnsupportedStepError(f"elementwise {op} on {ctype}")
    return forms[op], ctype


def _cast(value: str, ctype: str, to: DataType) -> tuple[str, str]:
    if to == DataType.BOOL:
        return f"({value} != 0)", "bool"
    if to == DataType.HALF:  # round to half as the stored HALF value would be
        return f"(float)(float16)(float)({value})", "float"
    if to not in _COMPUTE:
        raise UnsupportedStepError(f"cast to {to.name}")
    return f"({_COMPUTE[to]})({value})", _COMPUTE[to]


def generate_body(program: tuple, input_types: list[DataType], output_type: DataType) -> str:
    """The C body computing ``program`` for one element: inputs ``in0``..., output ``out``."""
    values: list[tuple[str, str]] = []
    lines = []
    for i, dtype in enumerate(input_types):
        if dtype not in _COMPUTE:
            raise UnsupportedStepError(f"input type {dtype.name}")
        ctype = _COMPUTE[dtype]
        lines.append(f"const {ctype} v{i} = ({ctype})in{i};")
        values.append((f"v{i}", ctype))
    for number, step in enumerate(program):
        kind, name = str(step[0]), str(step[1])
        args = [values[i] for i in step_operands(step)]
        x, ctype = args[0]
        if kind == "elementwise":
            expression, result = _elementwise(name, x, args[1][0], ctype)
        elif kind == "unary":
            if name in ("ISINF", "ISNAN"):
                expression = f"is{name[2:].lower()}((float){x})" if ctype == "float" \
                    else "false"
                result = "bool"
            elif name == "NOT":
                expression, result = f"(!{x})", "bool"
            elif ctype == "float":
                if name not in _FLOAT_UNARY:
                    raise UnsupportedStepError(f"unary {name}")
                expression, result = _FLOAT_UNARY[name].format(x=x), ctype
            else:
                if name not in _INTEGER_UNARY:
                    raise UnsupportedStepError(f"unary {name} on {ctype}")
                expression, result = _INTEGER_UNARY[name].format(x=x), ctype
        elif kind == "activation":
            if ctype != "float":
                raise UnsupportedStepError(f"activation on {ctype}")
            expression = activation_expression(name, x, float(step[3]), float(step[4]))
            result = ctype
        elif kind == "cast":
            expression, result = _cast(x, ctype, DataType[name])
        else:
            raise UnsupportedStepError(f"step kind {kind}")
        slot = f"s{number}"
        lines.append(f"const {result} {slot} = {expression};")
        values.append((slot, result))
    last, ctype = values[-1]
    if output_type == DataType.HALF:
        lines.append(f"out = (float16)(float){last};")
    else:
        lines.append(f"out = ({_COMPUTE[output_type]}){last};")
    return "\n".join(lines)


_KERNELS: dict[tuple, cupy.ElementwiseKernel] = {}


def compiled_program(program: tuple, input_types: list[DataType], output_type: DataType
                     ) -> cupy.ElementwiseKernel:
    """The ElementwiseKernel of ``program`` for these types (generated once per signature)."""
    key = (program, tuple(input_types), output_type)
    compiled = _KERNELS.get(key)
    if compiled is None:
        body = generate_body(program, input_types, output_type)
        params = ", ".join(f"{_PARAM[t]} in{i}" for i, t in enumerate(input_types))
        compiled = cupy.ElementwiseKernel(params, f"{_PARAM[output_type]} out", body,
                                          f"engine_fused_pointwise_{len(_KERNELS)}")
        _KERNELS[key] = compiled
    return compiled


def _generatable(layer: ILayer, inputs: list[TensorInfo | None]) -> bool:
    assert isinstance(layer, IFusedPointwiseLayer)
    if any(i is None for i in inputs):
        return False
    try:
        (out,) = layer.infer(inputs)
        if out.dtype not in _PARAM:
            return False
        generate_body(layer.program, [i.dtype for i in inputs], out.dtype)  # type: ignore[union-attr]
    except UnsupportedStepError:
        return False
    return True


@kernel(LayerType.FUSED_POINTWISE, backend="gpu", name="gpu.fused_pointwise_nvrtc",
        supports=_generatable)
def fused_pointwise(layer: ILayer, inputs: list[cupy.ndarray]) -> list[cupy.ndarray]:
    assert isinstance(layer, IFusedPointwiseLayer)
    types = [from_numpy_dtype(x.dtype) for x in inputs]
    (info,) = layer.infer([TensorInfo(x.shape, t) for x, t in zip(inputs, types)])
    compiled = compiled_program(layer.program, types, info.dtype)
    out = cupy.empty(info.shape, nptype(info.dtype))
    compiled(*inputs, out)
    return [out]
