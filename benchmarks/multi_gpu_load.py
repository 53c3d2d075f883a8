"""Multi-GPU serving: one model whose instance group spans 1 GPU, then N GPUs, under the same
concurrent load; prints throughput for each, their ratio, and the per-GPU counters.

    python benchmarks/multi_gpu_load.py                      # every GPU CuPy sees
    python benchmarks/multi_gpu_load.py --gpus 2 --seconds 20
    python benchmarks/multi_gpu_load.py --host-stand-ins 2 --width 128 --layers 2   # CPU dry run

The model is an MLP (``--layers`` matrix products of ``--width`` x ``--width`` with ReLU),
built once with the layer API. By default every layer uses the same weight matrix (a weight-tied
network, stored once in the plan), so a request costs the GPU several milliseconds while the plan
stays small and the server's CPU work per request stays far below that: the regime where
instances over more GPUs should scale (``--distinct-weights`` gives every layer its own).
It is served from a temporary repository as
``instance_group { count: C, kind: KIND_GPU, gpus: [0, ..., k-1] }``. Each configuration runs
in a fresh server process (so the load generator does not share its interpreter), which is
fed binary requests (Triton's binary tensor extension) by ``--concurrency`` client threads.
``--host-stand-ins N`` serves on N host stand-ins for GPUs (``visible_devices=cpu:0..``): it
checks the script, not the hardware.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine as trt  # noqa: E402

MODEL = "mlp"


def mlp_plan(width: int, layers: int, max_batch: int, target: trt.DeviceType,
             fp16: bool, tied: bool) -> bytes:
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network(0)
    x = network.add_input("INPUT0", trt.float32, (-1, width))
    rng = np.random.default_rng(0)
    weight = None
    for _ in range(layers):
        if weight is None or not tied:
            w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
            weight = network.add_constant((width, width), w).get_output(0)
        y = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, weight,
                                        trt.MatrixOperation.NONE).get_output(0)
        x = network.add_activation(y, trt.ActivationType.RELU).get_output(0)
    x.name = "OUTPUT0"
    network.mark_output(x)
    config = builder.create_builder_config()
    config.default_device_type = target
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape("INPUT0", (1, width), (max_batch, width), (max_batch, width))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise SystemExit("building the MLP plan failed")
    return bytes(plan)


def write_repository(root: Path, plan: bytes, width: int, max_batch: int, gpus: list[int],
                     count: int) -> None:
    (root / MODEL / "1").mkdir(parents=True)
    (root / MODEL / "1" / "model.plan").write_bytes(plan)
    (root / MODEL / "config.pbtxt").write_text(f"""
name: "{MODEL}"
platform: "tensorrt_plan"
max_batch_size: {max_batch}
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ {width} ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ {width} ] }} ]
instance_group [ {{ count: {count} kind: KIND_GPU gpus: [ {", ".join(map(str, gpus))} ] }} ]
""")


def serve(repository: str, port: int, devices: list[str] | None) -> None:
    """The server process: ``python -m server`` with the devices given to its core."""
    import uvicorn

    from server.core.dataplane import DataPlane, ServerSettings
    from server.rest.app import create_app

    plane = DataPlane(ServerSettings(model_repository=Path(repository),
                                     visible_devices=None if devices is None else tuple(devices),
                                     max_queue_size=1024))
    uvicorn.Server(uvicorn.Config(create_app(plane), host="127.0.0.1", port=port,
                                  log_level="warning", access_log=False)).run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise SystemExit("the server process exited while starting")
        try:
            if httpx.get(f"{url}/v2/models/{MODEL}/ready", timeout=5).status_code == 200:
                return
            index = httpx.post(f"{url}/v2/repository/index", timeout=5).json()
            failed = [m for m in index if m.get("state") == "UNAVAILABLE"]
            if failed:
                raise SystemExit(f"the model did not load: {failed}")
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not get ready within {timeout:.0f} s")


def binary_request(batch: int, width: int) -> tuple[bytes, dict[str, str]]:
    data = np.random.default_rng(1).standard_normal((batch, width)).astype(np.float32).tobytes()
    header = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32",
                                     "shape": [batch, width],
                                     "parameters": {"binary_data_size": len(data)}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + data, {"Inference-Header-Content-Length": str(len(header))}


def drive(url: str, body: bytes, headers: dict[str, str], concurrency: int, seconds: float
          ) -> tuple[int, int, float, list[float]]:
    """(succeeded, failed, elapsed seconds, latencies in ms) of a load of ``seconds``."""
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        mine, bad = [], 0
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < stop:
                start = time.perf_counter()
                r = http.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
                if r.status_code == 200:
                    mine.append((time.perf_counter() - start) * 1000)
                else:
                    bad += 1
        with lock:
            latencies.extend(mine)
            failed[0] += bad

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies), failed[0], time.monotonic() - began, latencies


def gpu_gauges(text: str) -> dict[str, dict[str, float]]:
    """nv_gpu_* gauges by gpu_uuid."""
    out: dict[str, dict[str, float]] = {}
    for name, uuid, value in re.findall(r'^(nv_gpu_\w+){gpu_uuid="([^"]+)"} (\S+)$', text, re.M):
        out.setdefault(uuid, {})[name] = float(value)
    return out


def run_configuration(args: argparse.Namespace, plan: bytes, gpus: list[int],
                      devices: list[str] | None) -> float:
    with tempfile.TemporaryDirectory(prefix="multi_gpu_load-") as tmp:
        write_repository(Path(tmp), plan, args.width, args.batch, gpus, args.count)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = multiprocessing.get_context("spawn").Process(
            target=serve, args=(tmp, port, devices), daemon=True)
        process.start()
        try:
            wait_ready(url, process)
            body, headers = binary_request(args.batch, args.width)
            drive(url, body, headers, args.concurrency, args.warmup)  # graphs, kernels, caches
            before = httpx.get(f"{url}/v2/models/{MODEL}/stats").json()["model_stats"][0]
            httpx.get(f"{url}/metrics")  # utilization is measured from one scrape to the next
            done, failed, elapsed, latencies = drive(url, body, headers, args.concurrency,
                                                     args.seconds)
            metrics = httpx.get(f"{url}/metrics").text
            after = httpx.get(f"{url}/v2/models/{MODEL}/stats").json()["model_stats"][0]
        finally:
            process.terminate()
            process.join(30)
    rate = done / elapsed
    ms = np.array(latencies or [float("nan")])
    print(f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''} {gpus}: {rate:.1f} infer/s "
          f"({rate * args.batch:.0f} rows/s), p50 {np.percentile(ms, 50):.2f} ms, "
          f"p99 {np.percentile(ms, 99):.2f} ms, {failed} errors")
    gauges = gpu_gauges(metrics)
    start = {d["device"]: d for d in before["device_stats"]}
    for device in after["device_stats"]:
        earlier = start[device["device"]]
        executions = device["execution_count"] - earlier["execution_count"]
        infer_ns = device["compute_infer"]["ns"] - earlier["compute_infer"]["ns"]
        requests = device["compute_infer"]["count"] - earlier["compute_infer"]["count"]
        line = (f"    {device['device']}: {executions} executions "
                f"({device['inference_count'] - earlier['inference_count']} inferences), "
                f"compute_infer {infer_ns / max(requests, 1) / 1e6:.2f} ms/request")
        gauge = gauges.get(device.get("gpu_uuid", ""), {})
        if "nv_gpu_utilization" in gauge:
            line += f", utilization {gauge['nv_gpu_utilization']:.2f}"
        if "nv_gpu_memory_used_bytes" in gauge:
            line += f", memory used {gauge['nv_gpu_memory_used_bytes'] / 2**30:.1f} GiB"
        print(line)
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpus", type=int, default=0, help="N (default: every GPU CuPy sees)")
    p.add_argument("--host-stand-ins", type=int, default=0, metavar="N",
                   help="serve on N host stand-ins for GPUs (a CPU dry run)")
    p.add_argument("--count", type=int, default=2, help="instances (contexts) per GPU")
    p.add_argument("--concurrency", type=int, default=0,
                   help="client threads (default: 4 per instance of the N-GPU run)")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=int, default=4096)
    p.add_argument("--layers", type=int, default=256)
    p.add_argument("--distinct-weights", action="store_true",
                   help="give every layer its own weights (default: one matrix for all)")
    p.add_argument("--fp16", action="store_true")
    args = p.parse_args()
    if args.host_stand_ins:
        n = args.host_stand_ins
        devices: list[str] | None = [f"cpu:{i}" for i in range(n)]
        target = trt.DeviceType.CPU
    else:
        import cupy

        visible = cupy.cuda.runtime.getDeviceCount()
        n = args.gpus or visible
        if not 1 <= n <= visible:
            raise SystemExit(f"--gpus {n}: this machine has {visible} GPU(s)")
        devices, target = None, trt.DeviceType.GPU
    args.concurrency = args.concurrency or 4 * args.count * n
    print(f"MLP {args.layers} x [{args.width} x {args.width}], batch {args.batch}, "
          f"{'fp16' if args.fp16 else 'fp32'}, "
          f"{'distinct' if args.distinct_weights else 'tied'} weights, "
          f"{args.count} instances per GPU, "
          f"{args.concurrency} clients, {args.seconds:.0f} s per run"
          f"{', host stand-ins' if devices else ''}")
    started = time.perf_counter()
    plan = mlp_plan(args.width, args.layers, args.batch, target, args.fp16,
                    tied=not args.distinct_weights)
    print(f"plan: {len(plan) / 2**20:.0f} MiB, built in {time.perf_counter() - started:.1f} s")
    one = run_configuration(args, plan, [0], devices)
    if n == 1:
        print("only one GPU: nothing to compare")
        return
    many = run_configuration(args, plan, list(range(n)), devices)
    print(f"{n} GPUs / 1 GPU throughput: {many / one:.2f}x (ideal {n}x)")


if __name__ == "__main__":
    main()
