"""GPU kernels of the spatial layer family."""
