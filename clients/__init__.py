"""Python clients of the inference server, blocking and asyncio, over KServe v2 REST and
gRPC, NumPy in and out; ``python -m clients`` is the command line.

>>> from clients import Client
>>> with Client("localhost:8001") as client:        # doctest: +SKIP
...     client.infer("add_sub", {"INPUT0": a, "INPUT1": b})["OUTPUT0"]
"""

from clients.client import AsyncClient, Client
from clients.errors import InferenceServerError
from clients.shared_memory import RegionInput, RegionOutput, SystemSharedMemoryRegion
from clients.upload import model_from_directory

__all__ = ["AsyncClient", "Client", "InferenceServerError", "RegionInput", "RegionOutput",
           "SystemSharedMemoryRegion", "model_from_directory"]
