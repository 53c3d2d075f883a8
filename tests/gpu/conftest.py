"""Every test under tests/gpu needs CuPy and a CUDA device, and skips itself without them."""

import pytest

from engine.kernels.backends import gpu_available


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.gpu)
            if not gpu_available():
                item.add_marker(skip)
