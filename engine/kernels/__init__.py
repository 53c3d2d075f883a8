"""Kernels: the implementations (tactics) of each layer type, per backend.

``cpu/`` runs on NumPy and is always present; ``gpu/`` runs on CuPy where CuPy and a device
exist. Each kernel registers itself where it is defined (``registry.kernel``).
"""
