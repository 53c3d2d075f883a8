"""Quick plugins, TensorRT's ``tensorrt.plugin`` API: ``import engine.plugin as trtp``.

See ``engine.plugins.quick`` for the details and an example.
"""

from engine.plugins.quick import (
    ShapeExpr,
    ShapeExprs,
    Tensor,
    TensorDesc,
    from_shape_expr,
    impl,
    op,
    register,
)

__all__ = ["ShapeExpr", "ShapeExprs", "Tensor", "TensorDesc", "from_shape_expr", "impl", "op",
           "register"]
