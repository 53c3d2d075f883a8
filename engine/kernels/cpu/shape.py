"""CPU kernels of the shape layer family (being filled in)."""
