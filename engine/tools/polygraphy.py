"""``pypolygraphy`` / ``python -m engine.tools.polygraphy``: a peer of Polygraphy's ``run``
and ``inspect model``.

    pypolygraphy run model.onnx --engine --onnxrt --target cpu --atol 1e-5 --rtol 1e-5
    pypolygraphy inspect model model.onnx      # or model.plan

``run`` builds the model with this engine (``--engine``, alias ``--trt``), runs it and
onnxruntime (``--onnxrt``) on the same random inputs, and compares every output: maximum and
mean absolute and relative error, and the count of mismatched elements. Exit status 0 when
every output is within tolerance (PASSED), 1 when one is not (FAILED) or a run fails, 2 for a
bad command line.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import engine as trt
from engine.errors import EngineError
from engine.plan.format import MAGIC
from engine.tools.benchmark import make_inputs
from engine.tools.compare import compare_output
from engine.tools.errors import EXIT_FAILURE, EXIT_USAGE, ToolError, UsageError
from engine.tools.onnx_build import BuildOptions, build_from_onnx
from engine.tools.options import DeviceChoice
from engine.tools.plan_summary import format_summary, summarize_plan
from engine.tools.tool_logger import ToolLogger

NAME = "pypolygraphy"


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_input_shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    """Polygraphy's ``name:[1,3,224,224]`` (or trtexec's ``name:1x3x224x224``) items."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        match = re.fullmatch(r"(.+?):\[?([\d,x ]*)\]?", item.strip())
        if match is None:
            raise UsageError(f"--input-shapes: '{item}' is not NAME:[D0,D1,...]")
        dims = [d for d in re.split(r"[,x ]", match.group(2)) if d]
        shapes[match.group(1)] = tuple(int(d) for d in dims)
    return shapes


def _target(name: str | None) -> DeviceChoice | None:
    return None if name is None else DeviceChoice(name)


def run_onnxruntime(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference outputs, from onnxruntime on the CPU."""
    try:
        import onnxruntime
    except ImportError:
        raise ToolError("--onnxrt needs onnxruntime: pip install onnxruntime") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model), options,
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, feeds)
    return {name: np.asarray(value) for name, value in zip(names, results)}


def _to_host(value: Any) -> np.ndarray:
    # GPU outputs are device arrays with a ``get()`` copy to the host (CuPy's).
    return value if isinstance(value, np.ndarray) else np.asarray(value.get())


def cmd_run(args: argparse.Namespace, logger: ToolLogger) -> int:
    if not args.engine or not args.onnxrt:
        raise UsageError("run compares two runners: give both --engine (or --trt) and --onnxrt")
    if not args.model.is_file():
        raise UsageError(f"no such model file {args.model}")
    shapes = parse_input_shapes(args.input_shapes)
    options = BuildOptions(onnx=args.model, shapes=shapes, device=_target(args.target),
                           precisions=["fp16"] if args.fp16 else [])
    plan = build_from_onnx(options, logger)
    engine = trt.engine_from_plan(plan, logger)
    backend = engine.target["backend"]
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = {}
    for name in names:
        if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
            continue
        declared = tuple(engine.get_tensor_shape(name))
        inputs[name] = shapes.get(name) or (tuple(engine.get_tensor_profile_shape(name, 0)[1])
                                            if any(d < 0 for d in declared) else declared)
    feeds = make_inputs(engine, inputs, {}, args.seed)
    logger.info(f"engine-runner ({backend}) | Building and running {args.model}")
    ours = {name: _to_host(value)
            for name, value in engine.create_execution_context().infer(feeds).items()}
    logger.info(f"onnxrt-runner | Running {args.model}")
    reference = run_onnxruntime(args.model, feeds)
    missing = sorted(set(reference) - set(ours))
    if missing:
        raise ToolError(f"outputs {missing} of onnxruntime are not outputs of the engine")
    logger.info(f"Accuracy Comparison | engine-runner ({backend}) vs. onnxrt-runner")
    passed_all = True
    for name, expected in reference.items():
        actual = ours[name]
        logger.info(f"Comparing Output: '{name}' (dtype={actual.dtype}, shape={actual.shape}) "
                    f"with '{name}' (dtype={expected.dtype}, shape={expected.shape})")
        logger.info(f"    Tolerance: [abs={args.atol:g}, rel={args.rtol:g}] | Checking "
                    f"elemwise error")
        result = compare_output(name, actual, expected, args.atol, args.rtol)
        for line in result.lines(args.atol, args.rtol):
            logger.info("    " + line)
        passed_all &= result.passed
    verdict = "PASSED" if passed_all else "FAILED"
    detail = "All outputs matched" if passed_all else "Mismatched outputs"
    logger.info(f"{verdict} | {detail} | Outputs: {sorted(reference)}")
    return 0 if passed_all else EXIT_FAILURE


def cmd_inspect_model(args: argparse.Namespace, logger: ToolLogger) -> int:
    if not args.model.is_file():
        raise UsageError(f"no such model file {args.model}")
    data = args.model.read_bytes()
    if data[:len(MAGIC)] == MAGIC:
        logger.info(f"Loading plan {args.model}")
        plan = data
    else:
        logger.info(f"Building {args.model} (ONNX) to show the layers, tactics and precisions")
        options = BuildOptions(onnx=args.model, shapes=parse_input_shapes(args.input_shapes),
                               device=_target(args.target))
        plan = build_from_onnx(options, logger)
    print(format_summary(summarize_plan(plan)))
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog=NAME, description=__doc__.splitlines()[0], allow_abbrev=False)
    tools = p.add_subparsers(dest="tool", required=True)
    run = tools.add_parser("run", help="run a model on this engine and onnxruntime, compare",
                           allow_abbrev=False)
    run.add_argument("model", type=Path, help="ONNX model")
    run.add_argument("--engine", "--trt", dest="engine", action="store_true",
                     help="run on this engine")
    run.add_argument("--onnxrt", action="store_true", help="run on onnxruntime (reference)")
    run.add_argument("--target", choices=("cpu", "gpu"), default=None,
                     help="target of this engine (default: the GPU if usable)")
    run.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (1e-5)")
    run.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance (1e-5)")
    run.add_argument("--fp16", action="store_true", help="build with FP16 tactics enabled")
    run.add_argument("--seed", type=int, default=1, help="seed of the random inputs")
    run.add_argument("--input-shapes", nargs="+", default=[], metavar="NAME:[SHAPE]",
                     help="shapes of dynamic inputs, e.g. x:[4,16]")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(handler=cmd_run)
    inspect = tools.add_parser("inspect", help="inspect a model", allow_abbrev=False)
    what = inspect.add_subparsers(dest="what", required=True)
    model = what.add_parser("model", help="layers, tactics, precisions and I/O of an ONNX "
                            "model (built) or a plan", allow_abbrev=False)
    model.add_argument("model", type=Path, help="ONNX model or plan")
    model.add_argument("--target", choices=("cpu", "gpu"), default=None,
                       help="target to build an ONNX model for")
    model.add_argument("--input-shapes", nargs="+", default=[], metavar="NAME:[SHAPE]")
    model.add_argument("--verbose", action="store_true")
    model.set_defaults(handler=cmd_inspect_model)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = make_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{NAME}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logger = ToolLogger(trt.Logger.VERBOSE if args.verbose else trt.Logger.INFO)
    try:
        status = int(args.handler(args, logger))
    except ToolError as exc:
        print(f"{NAME}: error: {exc}", file=sys.stderr)
        status = exc.exit_code
    except (EngineError, OSError) as exc:
        print(f"{NAME}: error: {exc}", file=sys.stderr)
        status = EXIT_FAILURE
    if args.tool == "run":
        verdict = "PASSED" if status == 0 else "FAILED"
        print(f"[I] {verdict} | Command: {NAME} {shlex.join(argv)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
