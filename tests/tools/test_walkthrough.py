"""The README's walkthrough, end to end, as a new user types it: make an ONNX model, build it
with the CLI into a model repository, benchmark it, compare it with onnxruntime, serve the
repository, upload a second model, and query both over REST and gRPC."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.tools.conftest import mlp_reference, write_mlp

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(*args: str, cwd: Path) -> str:
    """Run one walkthrough command; it must succeed."""
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_mlp(tmp_path / "model.onnx")
    return tmp_path


@contextmanager
def serving(repository: Path) -> Iterator[tuple[str, str]]:
    """``python -m server --model-repository DIR`` in the background until the block ends."""
    http_port, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--model-repository", str(repository),
         "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--metrics-port", "0",
         "--host", "127.0.0.1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready after 60 s"
            time.sleep(0.2)
        yield url, f"127.0.0.1:{grpc_port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.mark.slow
def test_readme_walkthrough(workdir: Path) -> None:
    plan = workdir / "models" / "mlp" / "1" / "model.plan"
    plan.parent.mkdir(parents=True)

    # 1. Build the ONNX model into the repository's first model.
    out = sh("-m", "engine.tools.trtexec", "--onnx=model.onnx", f"--saveEngine={plan}",
             "--minShapes=x:1x16", "--optShapes=x:4x16", "--maxShapes=x:8x16", "--device=cpu",
             "--skipInference", cwd=workdir)
    assert "&&&& PASSED" in out and plan.is_file()

    # 2. Benchmark the plan.
    out = sh("-m", "engine.tools.trtexec", f"--loadEngine={plan}", "--shapes=x:4x16",
             "--duration=0.5", "--warmUp=50", cwd=workdir)
    assert "Throughput:" in out and "percentile(99%)" in out

    # 3. Check it against onnxruntime.
    out = sh("-m", "engine.tools.polygraphy", "run", "model.onnx", "--engine", "--onnxrt",
             "--target", "cpu", cwd=workdir)
    assert "PASSED | All outputs matched" in out

    # 4. Serve the repository (the rest runs while it serves).
    with serving(workdir / "models") as (url, grpc_url):
        use_the_server(workdir, url, grpc_url)


def use_the_server(workdir: Path, url: str, grpc_url: str) -> None:
    index = httpx.post(f"{url}/v2/repository/index", json={}).json()
    assert {"name": "mlp", "version": "1", "state": "READY"}.items() <= index[0].items()

    # 5. Upload the ONNX model itself as a second model; the server builds it.
    response = httpx.post(f"{url}/v2/repository/models/mlp_onnx/upload",
                          params={"filename": "model.onnx"},
                          content=(workdir / "model.onnx").read_bytes(), timeout=120)
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "mlp_onnx", "version": "1"}

    # 6. Query both, over REST and over gRPC, with the command-line client.
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    np.save(workdir / "x.npy", x)
    expected = mlp_reference(x)
    for model in ("mlp", "mlp_onnx"):
        for endpoint in (url, grpc_url):
            saved = workdir / f"out-{model}-{endpoint.split(':')[0]}"
            out = sh("-m", "clients", "--url", endpoint, "infer", model, "--input", "x=x.npy",
                     "--save", str(saved), cwd=workdir)
            assert out.startswith("y  float32  shape [2, 8]")
            np.testing.assert_allclose(np.load(saved / "y.npy"), expected, rtol=1e-5,
                                       atol=1e-6)
