"""CUDA shared memory on a GPU: a second process allocates device memory with CuPy, places the
inputs there and hands over its CUDA IPC handle; the server reads the inputs from it and
writes an output into it. Runs through the core and the REST codec, the path both faces share.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.kernels.backends import gpu_available
from server.core.codec import request_from_body, response_to_body
from server.core.dataplane import DataPlane, ServerSettings
from server.core.shared_memory import cuda_handle_from_json
from tests.server.plans import ADD_SUB_CONFIG, add_sub_plan

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")]

# The client process: 1024 bytes of device memory holding INPUT0 at 0 and INPUT1 at 64; it
# prints its IPC handle, then, when told, the 16 floats at byte 512 (where OUTPUT0 goes).
CLIENT = r"""
import base64, json, sys
import cupy as cp
cp.cuda.set_allocator(None)  # a whole cudaMalloc allocation: the handle maps its start
buffer = cp.zeros(256, dtype=cp.float32)
buffer[:16] = cp.arange(16, dtype=cp.float32)
buffer[16:32] = 2.0
cp.cuda.runtime.deviceSynchronize()
print(base64.b64encode(bytes(cp.cuda.runtime.ipcGetMemHandle(buffer.data.ptr))).decode(),
      flush=True)
sys.stdin.readline()
print(json.dumps(buffer[128:144].get().tolist()), flush=True)
sys.stdin.readline()
"""


def in_region(offset: int) -> dict[str, object]:
    return {"shared_memory_region": "gpu_io", "shared_memory_offset": offset,
            "shared_memory_byte_size": 64}


def test_cuda_shared_memory_from_another_process(tmp_path: Path) -> None:
    repo = tmp_path / "models"  # made here: this test needs no web framework (conftest's)
    (repo / "add_sub" / "1").mkdir(parents=True)
    (repo / "add_sub" / "1" / "model.plan").write_bytes(add_sub_plan())
    (repo / "add_sub" / "config.pbtxt").write_text(ADD_SUB_CONFIG % "")
    with subprocess.Popen([sys.executable, "-c", CLIENT], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as client:
        assert client.stdout is not None and client.stdin is not None
        handle = cuda_handle_from_json({"b64": client.stdout.readline().strip()})
        plane = DataPlane(ServerSettings(model_repository=repo, model_control_mode="explicit",
                                         device="cpu", plan_cache=tmp_path / "cache"))

        async def serve() -> dict[str, object]:
            await plane.repository.load("add_sub")
            plane.register_cuda_shared_memory("gpu_io", handle, 0, 1024)
            assert plane.cuda_shared_memory_status() == [
                {"name": "gpu_io", "device_id": 0, "byte_size": 1024}]
            body = json.dumps({
                "inputs": [{"name": f"INPUT{i}", "datatype": "FP32", "shape": [1, 16],
                            "parameters": in_region(64 * i)} for i in range(2)],
                "outputs": [{"name": "OUTPUT0", "parameters": in_region(512)},
                            {"name": "OUTPUT1"}]}).encode()
            request = request_from_body(body, None)
            answer, _ = response_to_body(await plane.infer("add_sub", None, request), request)
            plane.unregister_cuda_shared_memory("gpu_io")
            assert plane.cuda_shared_memory_status() == []
            await plane.stop()
            return json.loads(answer)  # type: ignore[no-any-return]

        answer = asyncio.run(serve())
        client.stdin.write("\n")
        client.stdin.flush()
        written = np.array(json.loads(client.stdout.readline()), np.float32)
        client.stdin.write("\n")
        client.stdin.flush()
        assert client.wait(timeout=60) == 0
    a, b = np.arange(16, dtype=np.float32), np.full(16, 2.0, np.float32)
    out0, out1 = answer["outputs"]  # type: ignore[index]
    assert out0["parameters"] == in_region(512)
    np.testing.assert_array_equal(written, a + b)
    np.testing.assert_array_equal(np.array(out1["data"], np.float32), a - b)
