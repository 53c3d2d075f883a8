"""CPU kernels of the math layer family (being filled in)."""
