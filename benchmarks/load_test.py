"""A bounded load test: concurrent clients post infer requests for a fixed time and the
script prints throughput and latency percentiles.

    python examples/make_models.py
    python -m server --model-repository examples/models &
    python benchmarks/load_test.py --model add_sub --concurrency 8 --seconds 10 [--binary]

The client is Python (httpx, one thread per connection) and uses CPU itself; on a small
machine it measures client and server together.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import httpx
import numpy as np


def request_body(metadata: dict, batch: int, binary: bool) -> tuple[bytes, dict[str, str]]:
    rng = np.random.default_rng(0)
    header: dict = {"inputs": []}
    blobs = []
    for tensor in metadata["inputs"]:
        if tensor["datatype"] not in ("FP32", "INT32"):
            raise SystemExit(f"load_test feeds FP32/INT32 inputs; {tensor['name']} is "
                             f"{tensor['datatype']}")
        shape = [batch if d == -1 and i == 0 else max(d, 1) for i, d in enumerate(tensor["shape"])]
        dtype = np.float32 if tensor["datatype"] == "FP32" else np.int32
        array = rng.standard_normal(shape).astype(dtype)
        entry = {"name": tensor["name"], "datatype": tensor["datatype"], "shape": shape}
        if binary:
            blobs.append(array.tobytes())
            entry["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            entry["data"] = array.ravel().tolist()
        header["inputs"].append(entry)
    if binary:
        header["parameters"] = {"binary_data_output": True}
    text = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(text))} if binary else \
        {"Content-Type": "application/json"}
    return text + b"".join(blobs), headers


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--model", default="add_sub")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--binary", action="store_true")
    args = p.parse_args()
    metadata = httpx.get(f"{args.url}/v2/models/{args.model}").json()
    body, headers = request_body(metadata, args.batch, args.binary)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds

    def client() -> None:
        mine, failed = [], 0
        with httpx.Client(base_url=args.url, timeout=60) as http:
            while time.monotonic() < stop:
                start = time.perf_counter()
                r = http.post(f"/v2/models/{args.model}/infer", content=body, headers=headers)
                if r.status_code == 200:
                    mine.append(time.perf_counter() - start)
                else:
                    failed += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    if not latencies:
        raise SystemExit(f"no request succeeded ({errors[0]} failed)")
    ms = np.array(latencies) * 1000
    print(f"model {args.model} batch {args.batch} {'binary' if args.binary else 'json'} "
          f"concurrency {args.concurrency}: {len(ms) / elapsed:.1f} infer/s "
          f"({len(ms) * args.batch / elapsed:.1f} rows/s), p50 {np.percentile(ms, 50):.2f} ms, "
          f"p99 {np.percentile(ms, 99):.2f} ms, {errors[0]} errors")


if __name__ == "__main__":
    main()
