"""CPU kernels of the math layer family; each sibling module registers its own."""

from engine.kernels.cpu import (
    math_contraction,  # noqa: F401 - registers kernels
    math_elementwise,  # noqa: F401
    math_pointwise,  # noqa: F401
    math_reduction,  # noqa: F401
)
