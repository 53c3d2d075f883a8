"""GPU kernels of the shape layer family."""
