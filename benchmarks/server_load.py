"""Side-by-side load test: our server, MLServer and Triton (PyTriton's bundled tritonserver)
serving the same add_sub model on loopback, in one run, interleaved.

    python benchmarks/server_load.py --seconds 10 --rounds 2            # starts all three
    python benchmarks/server_load.py --servers ours --generators py     # ours alone

Each server is started by its script in benchmarks/peers/ (peer venvs outside the repository,
see those scripts), waited on until /v2/health/ready answers, and stopped at the end. For each
round, each case (generator x protocol) runs against each server in turn (the order rotates per
round), for ``--seconds`` at ``--concurrency`` connections, batch 1:

- generator ``py``: a separate process of tritonclient clients, one thread and one client per
  connection (tritonclient.http for REST, JSON or binary tensors; tritonclient.grpc for gRPC);
- generator ``wrk``: wrk (2 threads) with benchmarks/wrk/post_body.lua posting one fixed body
  (REST only; JSON, or the binary tensor extension).

It prints throughput, p50 and p99 latency, the server's CPU time per request (its whole
process tree, from /proc) and a table of ratios ours/peer (the best round of each), and writes
everything as JSON (``--json``). Idle servers stay up while another is measured; their idle CPU
use is measured and printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = "add_sub"
WIDTH = 16

SERVERS = {
    # name: (start script, http port, grpc port, supports the binary tensor extension, env)
    "ours": (HERE / "peers" / "start_ours.sh", 18000, 18001, True, {}),
    "mlserver": (HERE / "peers" / "start_mlserver.sh", 18080, 18081, False, {}),
    "triton": (HERE / "peers" / "start_pytriton.sh", 18010, 18011, True, {}),
    # what-ifs, not in the default set, no code change: ours with httptools on the path
    # (uvicorn's http="auto" picks it up instead of h11; a folder made by
    # `pip install --target /tmp/peers/uvextra uvloop httptools`), and the same plus uvloop
    # (a sitecustomize.py in /tmp/peers/uvloopsite calling uvloop.install(), since
    # server/__main__.py makes its loop with asyncio.run and uvicorn's loop setting is unused)
    "ours-httptools": (HERE / "peers" / "start_ours.sh", 18020, 18021, True, {
        "OURS_HTTP_PORT": "18020", "OURS_GRPC_PORT": "18021",
        "OURS_EXTRA_PYTHONPATH": "/tmp/peers/uvextra"}),
    "ours-uvloop": (HERE / "peers" / "start_ours.sh", 18030, 18031, True, {
        "OURS_HTTP_PORT": "18030", "OURS_GRPC_PORT": "18031",
        "OURS_EXTRA_PYTHONPATH": "/tmp/peers/uvextra:/tmp/peers/uvloopsite"}),
}
CASES = [("py", "rest-json"), ("py", "rest-binary"), ("py", "grpc"),
         ("wrk", "rest-json"), ("wrk", "rest-binary")]


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1, WIDTH)).astype(np.float32),
            rng.standard_normal((1, WIDTH)).astype(np.float32))


# ---------------------------------------------------------------- the Python load generator

def run_client(protocol: str, url: str, concurrency: int, seconds: float) -> dict:
    """Threads of tritonclient clients; returns counts and latencies (runs in its own process)."""
    a, b = inputs()
    want0, want1 = a + b, a - b
    binary = protocol == "rest-binary"
    if protocol == "grpc":
        import tritonclient.grpc as tc
    else:
        import tritonclient.http as tc

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)
    state = {"stop": 0.0}

    def client() -> None:
        mine: list[float] = []
        failed: list[str] = []
        c = tc.InferenceServerClient(url)
        ins = [tc.InferInput("INPUT0", [1, WIDTH], "FP32"),
               tc.InferInput("INPUT1", [1, WIDTH], "FP32")]
        if protocol == "grpc":
            ins[0].set_data_from_numpy(a)
            ins[1].set_data_from_numpy(b)
            outs = [tc.InferRequestedOutput("OUTPUT0"), tc.InferRequestedOutput("OUTPUT1")]
        else:
            ins[0].set_data_from_numpy(a, binary_data=binary)
            ins[1].set_data_from_numpy(b, binary_data=binary)
            outs = [tc.InferRequestedOutput("OUTPUT0", binary_data=binary),
                    tc.InferRequestedOutput("OUTPUT1", binary_data=binary)]
        # one checked request before timing
        r = c.infer(MODEL, ins, outputs=outs)
        assert np.allclose(r.as_numpy("OUTPUT0"), want0) and \
            np.allclose(r.as_numpy("OUTPUT1"), want1), "wrong answer"
        barrier.wait()
        while time.perf_counter() < state["stop"]:
            start = time.perf_counter()
            try:
                c.infer(MODEL, ins, outputs=outs)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failed.append(str(exc)[:200])
                continue
            mine.append(time.perf_counter() - start)
        c.close()
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    state["stop"] = time.perf_counter() + 3600
    barrier.wait()
    began = time.perf_counter()
    state["stop"] = began + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"requests": len(latencies), "seconds": elapsed, "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "rps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


# ---------------------------------------------------------------- wrk

def json_body() -> bytes:
    a, b = inputs()
    return json.dumps({"inputs": [
        {"name": "INPUT0", "datatype": "FP32", "shape": [1, WIDTH], "data": a.ravel().tolist()},
        {"name": "INPUT1", "datatype": "FP32", "shape": [1, WIDTH], "data": b.ravel().tolist()}],
        "outputs": [{"name": "OUTPUT0"}, {"name": "OUTPUT1"}]}).encode()


def binary_body() -> tuple[bytes, int]:
    a, b = inputs()
    header = json.dumps({"inputs": [
        {"name": n, "datatype": "FP32", "shape": [1, WIDTH],
         "parameters": {"binary_data_size": WIDTH * 4}} for n in ("INPUT0", "INPUT1")],
        "outputs": [{"name": n, "parameters": {"binary_data": True}}
                    for n in ("OUTPUT0", "OUTPUT1")]}).encode()
    return header + a.tobytes() + b.tobytes(), len(header)


def run_wrk(protocol: str, http_port: int, concurrency: int, seconds: float,
            workdir: Path) -> dict:
    env = dict(os.environ)
    if protocol == "rest-json":
        path = workdir / "body.json"
        path.write_bytes(json_body())
        env.update(WRK_CONTENT_TYPE="application/json", WRK_HEADER_LENGTH="")
    else:
        body, header_length = binary_body()
        path = workdir / "body.bin"
        path.write_bytes(body)
        env.update(WRK_CONTENT_TYPE="application/octet-stream",
                   WRK_HEADER_LENGTH=str(header_length))
    env["WRK_BODY_FILE"] = str(path)
    cmd = ["wrk", "-t2", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(HERE / "wrk" / "post_body.lua"),
           f"http://127.0.0.1:{http_port}/v2/models/{MODEL}/infer"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout}\n{out.stderr}")
    r = json.loads(line.split(" ", 1)[1])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    ok = r["requests"] - r["status"]
    return {"requests": ok, "seconds": r["duration_us"] / 1e6, "errors": errors,
            "first_error": None if not errors else f"wrk errors {r}",
            "rps": ok / (r["duration_us"] / 1e6),
            "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000}


# ---------------------------------------------------------------- servers and CPU time

def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of pid and all its descendants, in seconds."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
            if r.status != 200:
                return False
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready",
                                    timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_server(name: str, logdir: Path, timeout: float = 180) -> subprocess.Popen:
    script, http_port, _, _, env = SERVERS[name]
    if ready(http_port):
        raise SystemExit(f"port {http_port} already serves {MODEL}: stop that server first")
    log = open(logdir / f"{name}.log", "wb")
    proc = subprocess.Popen([str(script)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, **env})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {logdir / name}.log")
        if ready(http_port):
            return proc
        time.sleep(0.5)
    stop_server(proc)
    raise SystemExit(f"{name} not ready after {timeout:.0f}s; see {logdir / name}.log")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=20)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# ---------------------------------------------------------------- driver

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", default="ours,mlserver,triton")
    p.add_argument("--generators", default="py,wrk")
    p.add_argument("--protocols", default="rest-json,rest-binary,grpc")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="write all results here")
    p.add_argument("--client", nargs=2, metavar=("PROTOCOL", "URL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        print(json.dumps(run_client(args.client[0], args.client[1], args.concurrency,
                                    args.seconds)))
        return

    names = [s for s in args.servers.split(",") if s]
    generators = args.generators.split(",")
    protocols = args.protocols.split(",")
    if "wrk" in generators and shutil.which("wrk") is None:
        raise SystemExit("wrk not found (apt-get install wrk)")
    cases = [c for c in CASES if c[0] in generators and c[1] in protocols]
    workdir = Path(tempfile.mkdtemp(prefix="server_load-"))
    procs: dict[str, subprocess.Popen] = {}
    results: list[dict] = []
    try:
        for name in names:
            t0 = time.monotonic()
            procs[name] = start_server(name, workdir)
            print(f"started {name} (pid {procs[name].pid}) in {time.monotonic() - t0:.1f}s",
                  flush=True)
        time.sleep(2)
        idle = {n: tree_cpu_seconds(pr.pid) for n, pr in procs.items()}
        time.sleep(5)
        for n, pr in procs.items():
            print(f"idle CPU of {n}: {(tree_cpu_seconds(pr.pid) - idle[n]) / 5 * 100:.1f}% "
                  "of a core", flush=True)
        for rnd in range(args.rounds):
            for gen, proto in cases:
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                for name in order:
                    _, http_port, grpc_port, has_binary, _ = SERVERS[name]
                    if proto == "rest-binary" and not has_binary:
                        continue
                    before = tree_cpu_seconds(procs[name].pid)
                    if gen == "py":
                        url = f"127.0.0.1:{grpc_port if proto == 'grpc' else http_port}"
                        out = subprocess.run(
                            [sys.executable, __file__, "--client", proto, url,
                             "--concurrency", str(args.concurrency),
                             "--seconds", str(args.seconds)],
                            capture_output=True, text=True, timeout=args.seconds + 120)
                        if out.returncode != 0:
                            r = {"requests": 0, "rps": 0.0, "p50_ms": float("nan"),
                                 "p99_ms": float("nan"), "errors": 1,
                                 "first_error": out.stderr.strip().splitlines()[-1]
                                 if out.stderr.strip() else f"rc {out.returncode}"}
                        else:
                            r = json.loads(out.stdout.strip().splitlines()[-1])
                    else:
                        r = run_wrk(proto, http_port, args.concurrency, args.seconds, workdir)
                    cpu = tree_cpu_seconds(procs[name].pid) - before
                    r.update(server=name, generator=gen, protocol=proto, round=rnd,
                             server_cpu_ms_per_req=cpu * 1000 / r["requests"]
                             if r["requests"] else float("nan"))
                    results.append(r)
                    print(f"round {rnd} {gen:3} {proto:11} {name:8} {r['rps']:8.1f} infer/s  "
                          f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                          f"server CPU {r['server_cpu_ms_per_req']:.3f} ms/req  "
                          f"errors {r['errors']}"
                          + (f" ({r['first_error']})" if r.get("first_error") else ""),
                          flush=True)
    finally:
        for pr in procs.values():
            stop_server(pr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print_table(results, names, cases)
    print(f"server logs in {workdir}")


def print_table(results: list[dict], names: list[str], cases: list[tuple[str, str]]) -> None:
    """Best round (highest throughput) of each server and case, and ours/peer ratios."""
    best: dict[tuple[str, str, str], dict] = {}
    for r in results:
        key = (r["generator"], r["protocol"], r["server"])
        if r["requests"] and (key not in best or r["rps"] > best[key]["rps"]):
            best[key] = r
    peers = [n for n in names if n != "ours"] if "ours" in names else []
    head = "| generator | protocol | " + " | ".join(
        [f"{n} infer/s (p50/p99 ms)" for n in names] + [f"ours/{n}" for n in peers]) + " |"
    print()
    print(head)
    print("|" + "---|" * (2 + len(names) + len(peers)))
    for gen, proto in cases:
        cells = []
        for n in names:
            r = best.get((gen, proto, n))
            cells.append(f"{r['rps']:.0f} ({r['p50_ms']:.2f}/{r['p99_ms']:.2f})" if r else "n/a")
        ours = best.get((gen, proto, "ours"))
        ratios = []
        for n in peers:
            r = best.get((gen, proto, n))
            ratios.append(f"{ours['rps'] / r['rps']:.2f}" if ours and r else "n/a")
        print(f"| {gen} | {proto} | " + " | ".join(cells + ratios) + " |")
    print()
    print("Server CPU time per request, ms (median over rounds; the server's whole process "
          "tree; lower is better; less sensitive to the other load on the machine):")
    print("| generator | protocol | " + " | ".join(names) + " |")
    print("|" + "---|" * (2 + len(names)))
    for gen, proto in cases:
        cells = []
        for n in names:
            vals = [r["server_cpu_ms_per_req"] for r in results if r["requests"] and
                    (r["generator"], r["protocol"], r["server"]) == (gen, proto, n)]
            cells.append(f"{float(np.median(vals)):.3f}" if vals else "n/a")
        print(f"| {gen} | {proto} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
