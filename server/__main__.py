"""``python -m server --model-repository DIR``: serve a model repository over KServe v2 REST
and gRPC (``--grpc-port``; 0 turns the gRPC face off)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import uvicorn

from server.core.build import BUILD_ISOLATION
from server.core.dataplane import CONTROL_MODES, DataPlane, ServerSettings
from server.core.response_cache import CACHE_IMPLEMENTATIONS
from server.grpc.server import GrpcServer
from server.rest.app import create_app, create_metrics_app

log = logging.getLogger("server")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m server", description=__doc__.splitlines()[0])
    p.add_argument("--model-repository", type=Path, required=True,
                   help="directory of models in Triton's layout")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001,
                   help="port of the KServe v2 gRPC face (0: no gRPC)")
    p.add_argument("--metrics-port", type=int, default=8002,
                   help="port serving /metrics alone; 0: only /metrics on the HTTP port")
    p.add_argument("--model-control-mode", choices=CONTROL_MODES, default="none")
    p.add_argument("--repository-poll-secs", type=float, default=15.0)
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default="auto",
                   help="build target of models whose instance group kind is KIND_AUTO")
    p.add_argument("--api-token", default=None,
                   help="token that load, unload and upload calls must present as "
                        "'Authorization: Bearer <token>'")
    p.add_argument("--max-request-bytes", type=int, default=64 << 20)
    p.add_argument("--max-upload-bytes", type=int, default=512 << 20)
    p.add_argument("--max-queue-size", type=int, default=64,
                   help="requests a model may queue beyond its running ones before it "
                        "answers 503 busy")
    p.add_argument("--build-isolation", choices=BUILD_ISOLATION, default="gpu",
                   help="build ONNX models in a child process: 'gpu' builds (default; what "
                        "a GPU build leaves on the device goes with the child), 'always' or "
                        "'never'")
    p.add_argument("--device-list", default=None,
                   help="comma-separated devices the instance groups may use, e.g. "
                        "'gpu:0,gpu:1'; 'cpu:N' entries are host stand-ins for GPU N "
                        "(default: every visible CUDA device)")
    p.add_argument("--cache-config", action="append", default=[], metavar="CACHE,KEY=VALUE",
                   help="the response cache, as Triton takes it: 'local,size=<bytes>' keeps up "
                        "to that many bytes of outputs for the models whose configuration has "
                        "response_cache { enable: true } (default: no cache)")
    args = p.parse_args(argv)
    try:
        args.response_cache_bytes = response_cache_bytes(args.cache_config)
    except ValueError as exc:
        p.error(f"--cache-config: {exc}")
    return args


def response_cache_bytes(entries: list[str]) -> int:
    """The cache size that ``--cache-config`` entries (``<cache>,<key>=<value>``, repeatable)
    set; 0 without any."""
    settings: dict[str, str] = {}
    for entry in entries:
        cache, _, setting = entry.partition(",")
        key, equals, value = setting.partition("=")
        if cache not in CACHE_IMPLEMENTATIONS:
            raise ValueError(f"{entry!r}: unknown cache {cache!r}; this server has "
                             f"{list(CACHE_IMPLEMENTATIONS)}")
        if not equals or key != "size":
            raise ValueError(f"{entry!r}: expected {cache},size=<bytes>")
        settings[key] = value
    if "size" not in settings:
        return 0
    size = settings["size"]
    if not size.isdigit() or int(size) == 0:
        raise ValueError(f"size {size!r} must be a positive number of bytes")
    return int(size)


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(
        model_repository=args.model_repository, model_control_mode=args.model_control_mode,
        device=args.device, api_token=args.api_token, max_request_bytes=args.max_request_bytes,
        max_upload_bytes=args.max_upload_bytes, max_queue_size=args.max_queue_size,
        repository_poll_secs=args.repository_poll_secs, build_isolation=args.build_isolation,
        response_cache_bytes=args.response_cache_bytes,
        visible_devices=None if args.device_list is None
        else tuple(d.strip() for d in args.device_list.split(",") if d.strip()))


async def serve(args: argparse.Namespace) -> None:
    plane = DataPlane(settings_from_args(args))
    servers = [uvicorn.Server(uvicorn.Config(create_app(plane), host=args.host,
                                             port=args.http_port, log_level="info",
                                             access_log=False))]
    if args.metrics_port:
        servers.append(uvicorn.Server(uvicorn.Config(
            create_metrics_app(plane), host=args.host, port=args.metrics_port,
            log_level="warning", lifespan="off")))
    grpc_server = GrpcServer(plane, host=args.host, port=args.grpc_port)
    if args.grpc_port:
        log.info("gRPC listening on %s:%d", args.host, await grpc_server.start())
    try:
        await asyncio.gather(*(s.serve() for s in servers))
    finally:
        await grpc_server.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if not args.model_repository.is_dir():
        raise SystemExit(f"--model-repository {args.model_repository}: not a directory")
    run_event_loop(serve(args))


def run_event_loop(main_coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (it comes with ``uvicorn[standard]``; profiling
    showed the stock loop and h11 parser costing 20-35% of the CPU per REST request), else on
    asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
        return
    uvloop.run(main_coroutine)


if __name__ == "__main__":
    main()
