"""Importers, one module per op family; importing a module registers its importers."""

from engine.onnx.importers import (  # noqa: F401 - imported for their registrations
    activation,
    bitwise,
    cast,
    control,
    conv,
    cumulative,
    elementwise,
    generators,
    indexing,
    matmul,
    normalization,
    pooling,
    quantize,
    quantized_linear,
    recurrent,
    reduce,
    resize,
    shape,
    spectral,
    unary,
)
