"""``python -m server`` as a user starts it: the example repository, REST and metrics ports."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from tests.server.conftest import free_port, json_input

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_server_serves_the_examples(tmp_path: Path) -> None:
    models = tmp_path / "models"
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_models.py"), "--output",
                    str(models)], check=True, cwd=ROOT, capture_output=True, timeout=120)
    http, metrics = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--model-repository", str(models), "--host",
         "127.0.0.1", "--http-port", str(http), "--metrics-port", str(metrics), "--device",
         "cpu"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{http}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        a = np.ones((2, 16), np.float32)
        r = httpx.post(f"{url}/v2/models/add_sub/infer",
                       json={"inputs": [json_input("INPUT0", a), json_input("INPUT1", a)]})
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2.0] * 32
        r = httpx.post(f"{url}/v2/models/identity_int32/infer", json={
            "inputs": [json_input("INPUT0", np.array([[1, 2, 3, 4]]), "INT32")]})
        assert r.json()["outputs"][0]["data"] == [1, 2, 3, 4]
        text = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
        assert 'nv_inference_request_success{model="add_sub",version="1"} 1.0' in text
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()  # type: ignore[union-attr]
