"""``pytrtexec`` / ``python -m engine.tools.trtexec``: build a plan from ONNX and benchmark
it, a peer of TensorRT's ``trtexec`` with its flags and its report.

    pytrtexec --onnx=model.onnx --saveEngine=model.plan --fp16 --device=cpu
    pytrtexec --loadEngine=model.plan --shapes=x:8x16 --iterations=100 --exportTimes=t.json
    pytrtexec --loadEngine=model.plan --getPlanVersionOnly

Exit status: 0 on success, 1 when the build or the run fails (or a flag's feature is not
implemented), 2 for a bad command line; each failure is reported in one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import NoReturn

import engine as trt
from engine.errors import EngineError
from engine.tools.benchmark import (
    RunOptions,
    performance_summary,
    profile_layers,
    profile_table,
    run_benchmark,
)
from engine.tools.errors import EXIT_FAILURE, EXIT_USAGE, ToolError, UsageError
from engine.tools.onnx_build import BuildOptions, build_from_onnx
from engine.tools.options import (
    DeviceChoice,
    parse_device,
    parse_load_inputs,
    parse_mem_pool_size,
    parse_shapes,
)
from engine.tools.plan_summary import format_summary, plan_version, summarize_plan
from engine.tools.tool_logger import ToolLogger

NAME = "pytrtexec"


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def make_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog=NAME, description=__doc__.splitlines()[0], allow_abbrev=False,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_argument_group("Model options")
    model.add_argument("--onnx", type=Path, help="ONNX model to build")
    build = p.add_argument_group("Build options")
    build.add_argument("--saveEngine", type=Path, help="write the built plan here")
    build.add_argument("--fp16", action="store_true", help="enable FP16 tactics")
    build.add_argument("--bf16", action="store_true", help="enable BF16 tactics")
    build.add_argument("--int8", action="store_true", help="enable INT8 (calibration)")
    build.add_argument("--fp8", action="store_true", help="enable FP8")
    build.add_argument("--calib", type=Path, help="INT8 calibration cache (needs --int8)")
    build.add_argument("--stronglyTyped", action="store_true",
                       help="build a strongly typed network (types from the model)")
    for which in ("min", "opt", "max"):
        build.add_argument(f"--{which}Shapes", default="", metavar="SPEC",
                           help=f"{which} shapes of dynamic inputs: name:1x3x224x224[,...]")
    build.add_argument("--memPoolSize", default="", metavar="SPEC",
                       help="pool:size[B|K|M|G] (MiB by default), e.g. workspace:1024")
    build.add_argument("--builderOptimizationLevel", type=int, metavar="N",
                       help="0 (fastest build) to 5; 3 by default")
    build.add_argument("--timingCacheFile", type=Path,
                       help="read the timing cache from here if it exists, write it back")
    build.add_argument("--tacticSources", metavar="SPEC",
                       help="+/-SOURCE[,...] with CUBLAS, CUBLAS_LT, CUDNN, ...")
    build.add_argument("--skipInference", action="store_true", help="build only")
    run = p.add_argument_group("Inference options")
    run.add_argument("--loadEngine", type=Path, help="plan to load and run")
    run.add_argument("--getPlanVersionOnly", action="store_true",
                     help="print the version the plan was written with, and exit")
    run.add_argument("--shapes", default="", metavar="SPEC",
                     help="run shapes name:AxB[,...] (with --onnx: also min=opt=max)")
    run.add_argument("--loadInputs", default="", metavar="SPEC",
                     help="name:file[,...]: .npy or raw binary input values")
    run.add_argument("--iterations", type=int, default=10, metavar="N",
                     help="run at least N inferences (10)")
    run.add_argument("--duration", type=float, default=3.0, metavar="S",
                     help="run for at least S seconds (3)")
    run.add_argument("--warmUp", type=float, default=200.0, metavar="MS",
                     help="warm up for MS milliseconds before timing (200)")
    run.add_argument("--useCudaGraph", action="store_true",
                     help="capture the inference into a CUDA graph and replay it (GPU)")
    run.add_argument("--infStreams", type=int, default=1, metavar="N",
                     help="run N execution contexts at once (1)")
    run.add_argument("--noDataTransfers", action="store_true",
                     help="time without the H2D and D2H copies")
    report = p.add_argument_group("Reporting options")
    report.add_argument("--dumpLayerInfo", action="store_true",
                        help="print each layer with its tactic and precision")
    report.add_argument("--exportLayerInfo", type=Path, help="write the layer information (JSON)")
    report.add_argument("--exportTimes", type=Path, help="write each inference's times (JSON)")
    report.add_argument("--dumpProfile", action="store_true",
                        help="print per-layer times, from a profiling run of --iterations "
                             "inferences after the timed run")
    report.add_argument("--exportProfile", type=Path,
                        help="write the per-layer times of the profiling run (JSON)")
    report.add_argument("--exportOutput", type=Path,
                        help="write the outputs of the last inference (.npz)")
    report.add_argument("--verbose", action="store_true", help="print the builder's log")
    system = p.add_argument_group("System options")
    system.add_argument("--device", default=None, metavar="DEV",
                        help="cpu, gpu, gpu:N or N (a GPU index); default: the GPU if usable")
    return p


def _check(args: argparse.Namespace) -> None:
    if args.onnx is None and args.loadEngine is None:
        raise UsageError("give a model: --onnx=model.onnx or --loadEngine=model.plan")
    if args.onnx is not None and args.loadEngine is not None:
        raise UsageError("--onnx and --loadEngine exclude each other")
    if args.getPlanVersionOnly and args.loadEngine is None:
        raise UsageError("--getPlanVersionOnly needs --loadEngine")
    if args.loadEngine is not None and not args.loadEngine.is_file():
        raise UsageError(f"--loadEngine: no such file {args.loadEngine}")
    build_only = [f for f in ("fp16", "bf16", "int8", "fp8", "stronglyTyped")
                  if getattr(args, f)]
    if args.loadEngine is not None and (build_only or args.saveEngine):
        names = ", ".join("--" + f for f in build_only + (["saveEngine"] if args.saveEngine
                                                           else []))
        raise UsageError(f"{names}: build options need --onnx, not --loadEngine")


def _select_device(choice: DeviceChoice | None) -> None:
    # A GPU index is honoured by hiding the other devices before CUDA is first used.
    if choice is not None and choice.index is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(choice.index)


def _print_layer_info(plan: bytes, engine: trt.ICudaEngine, logger: ToolLogger,
                      export: Path | None, dump: bool) -> None:
    summary = summarize_plan(plan)
    layer_format = getattr(trt, "LayerInformationFormat", None)
    if hasattr(engine, "create_engine_inspector") and layer_format is not None:
        # The library's engine inspector, where it has one (TensorRT's JSON layout).
        inspector = engine.create_engine_inspector()
        document = json.loads(inspector.get_engine_information(layer_format.JSON))
    else:
        document = summary.to_json()
    if dump:
        logger.info("Layer Information:")
        print(format_summary(summary))
    if export is not None:
        export.write_text(json.dumps(document, indent=2))
        logger.info(f"Layer information written to {export}")


def run(args: argparse.Namespace, logger: ToolLogger) -> None:
    _check(args)
    device = parse_device(args.device) if args.device else None
    _select_device(device)
    shapes = parse_shapes("--shapes", args.shapes)
    load_inputs = parse_load_inputs(args.loadInputs)  # checked before a long build
    if args.loadEngine is not None:
        plan = args.loadEngine.read_bytes()
        if args.getPlanVersionOnly:
            fmt, version = plan_version(plan)
            print(f"Plan was created with pytrt version {version} (plan format v{fmt})")
            return
        if device is not None:
            target = summarize_plan(plan).target.get("backend")
            if target != device.kind:
                raise ToolError(f"--device={args.device}: {args.loadEngine} was built for the "
                                f"{target} target")
    else:
        options = BuildOptions(
            onnx=args.onnx,
            precisions=[f for f in ("fp16", "bf16", "int8", "fp8") if getattr(args, f)],
            calib=args.calib, strongly_typed=args.stronglyTyped,
            min_shapes=parse_shapes("--minShapes", args.minShapes),
            opt_shapes=parse_shapes("--optShapes", args.optShapes),
            max_shapes=parse_shapes("--maxShapes", args.maxShapes),
            shapes=shapes, mem_pool_sizes=parse_mem_pool_size(args.memPoolSize),
            optimization_level=args.builderOptimizationLevel,
            timing_cache_file=args.timingCacheFile, tactic_sources=args.tacticSources,
            device=device)
        logger.info(f"Building {args.onnx}")
        plan = build_from_onnx(options, logger)
        logger.info(f"Engine built: {len(plan)} bytes")
        if args.saveEngine is not None:
            args.saveEngine.write_bytes(plan)
            logger.info(f"Engine saved to {args.saveEngine}")
    engine = trt.engine_from_plan(plan, logger)
    backend = engine.target["backend"]
    logger.info(f"Engine loaded: {engine.num_layers} layers, target {backend}")
    if args.dumpLayerInfo or args.exportLayerInfo:
        _print_layer_info(plan, engine, logger, args.exportLayerInfo, args.dumpLayerInfo)
    if args.skipInference:
        return
    options_run = RunOptions(
        shapes=shapes, load_inputs=load_inputs,
        iterations=args.iterations, duration_s=args.duration, warm_up_ms=args.warmUp,
        use_cuda_graph=args.useCudaGraph, streams=args.infStreams,
        data_transfers=not args.noDataTransfers)
    result = run_benchmark(engine, options_run, logger)
    shape_text = ", ".join(f"{n}: {'x'.join(map(str, s)) or 'scalar'}"
                           for n, s in result.shapes.items())
    logger.info(f"Inference shapes: {shape_text}")
    logger.info(f"Timed {len(result.times)} inferences over {result.walltime_s:.3f} s on "
                f"{args.infStreams} stream(s)")
    for line in performance_summary(result, backend):
        logger.info(line)
    if args.exportTimes is not None:
        args.exportTimes.write_text(json.dumps([t.to_json() for t in result.times], indent=1))
        logger.info(f"Times written to {args.exportTimes}")
    if args.dumpProfile or args.exportProfile is not None:
        rows = profile_layers(engine, options_run, logger)
        if args.dumpProfile:
            logger.info(f"=== Profile ({args.iterations} iterations) ===")
            print("\n".join(profile_table(rows)))
        if args.exportProfile is not None:
            args.exportProfile.write_text(json.dumps(rows, indent=1))
            logger.info(f"Profile written to {args.exportProfile}")
    if args.exportOutput is not None:
        import numpy as np

        with args.exportOutput.open("wb") as f:
            np.savez(f, **result.outputs)  # type: ignore[arg-type]
        logger.info(f"Outputs written to {args.exportOutput}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = f"{NAME} {shlex.join(argv)}"
    try:
        args = make_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{NAME}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logger = ToolLogger(trt.Logger.VERBOSE if args.verbose else trt.Logger.INFO)
    try:
        run(args, logger)
    except ToolError as exc:
        print(f"{NAME}: error: {exc}", file=sys.stderr)
        print(f"&&&& FAILED {command}")
        return exc.exit_code
    except (EngineError, OSError) as exc:
        print(f"{NAME}: error: {exc}", file=sys.stderr)
        print(f"&&&& FAILED {command}")
        return EXIT_FAILURE
    print(f"&&&& PASSED {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
