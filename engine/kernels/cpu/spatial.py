"""CPU kernels of the spatial layer family (being filled in)."""
