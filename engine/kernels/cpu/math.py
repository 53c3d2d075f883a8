"""CPU kernels of the math layer family; each sibling module registers its own."""

from engine.kernels.cpu import math_contraction, math_elementwise, math_pointwise, \
    math_reduction  # noqa: F401 - registers kernels
