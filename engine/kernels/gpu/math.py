"""GPU kernels of the math layer family."""
