"""Run the ONNX node test cases through parser, builder and CPU runtime; write the support
table.

    python -m engine.onnx.conformance                 # all cases, writes docs/onnx-support.md
    python -m engine.onnx.conformance -k resize -v    # a subset, printing each failure

Each case: parse the model, build it for the CPU target (a profile at the test's shapes for
dynamic inputs), run ``context.infer`` on the test's inputs, and compare every output with the
expected one (rtol 1e-3, atol 1e-5; exact for integers and booleans).

TensorRT needs some inputs at build time (reduction axes, pads, split sizes, ...). The node
tests feed those as graph inputs; when the parser refuses a node because such an input is
computed at run time (``UNSUPPORTED_NODE_DYNAMIC`` naming the input), the case is retried with
that graph input turned into an initializer holding the test's value (when the value is
derived from graph inputs, the small integer inputs are supplied), and counted as passed
"with build-time inputs". That is how such models are deployed on TensorRT.

Types TensorRT lacks (DOUBLE, INT16, UINT16, UINT32, UINT64) are narrowed by the parser with a
warning (``engine.onnx.tensors.NARROWED``). For such cases the harness feeds the test's inputs
cast to the narrowed types and compares our outputs with the expected ones of the original
types at the same tolerance (float32 results against float64 expectations, exact for
integers); they count as passed "narrowed".

Types TensorRT lacks whose values a wider engine type holds exactly (FLOAT8E4M3FNUZ,
FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1 in FLOAT; INT2, UINT2, UINT4 in INT8) are widened by the
parser with a warning (``engine.onnx.tensors.WIDENED``): the harness feeds the test's inputs
widened and widens the expected outputs of those types (both lossless) before comparing; such
cases count as passed "widened". A Cast *to* one of those types (or INT4) is emulated by a
plugin that rounds to the target's representable set (``EmulatedCast_TRT``); those cases count
as passed "emulated".
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import re
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RTOL, ATOL = 1e-3, 1e-5
CASE_TIMEOUT_S = 60


@dataclass
class CaseResult:
    name: str
    op: str
    opset: int
    passed: bool
    stage: str = ""
    reason: str = ""
    frozen: list[str] = field(default_factory=list)
    narrowed: bool = False
    widened: bool = False
    emulated: bool = False
    seconds: float = 0.0


class _Timeout(Exception):  # noqa: N818 - a signal, not an error the caller sees
    pass


def _to_array(value: Any) -> np.ndarray:
    from onnx import TensorProto, numpy_helper

    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, (list, dict)) or value is None:
        raise TypeError(f"input of kind {type(value).__name__} (sequences, maps and optionals "
                        f"are not tensors)")
    return np.asarray(value)


def _freeze(model: Any, name: str, value: np.ndarray) -> Any:
    """A copy of ``model`` where graph input ``name`` is an initializer holding ``value``."""
    import onnx
    from onnx import numpy_helper

    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    inputs = [i for i in frozen.graph.input if i.name != name]
    del frozen.graph.input[:]
    frozen.graph.input.extend(inputs)
    frozen.graph.initializer.append(numpy_helper.from_array(value, name))
    return frozen


def run_case(case: Any) -> CaseResult:
    """Run one ``onnx.backend.test`` node case; never raises."""
    import engine as trt

    opset = max([o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")]
                or [0])
    result = CaseResult(case.name, case_op(case), opset, False)
    start = time.perf_counter()
    try:
        _run_case(trt, case, result)
    except _Timeout:
        result.stage, result.reason = "run", f"timed out after {CASE_TIMEOUT_S} s"
    except Exception as exc:  # noqa: BLE001 - the table records it
        result.reason = f"{type(exc).__name__}: {exc}"
        result.stage = result.stage or "harness"
    result.seconds = time.perf_counter() - start
    result.reason = " ".join(result.reason.split())[:300]
    return result


def _run_case(trt: Any, case: Any, result: CaseResult) -> None:
    inputs_list, outputs_list = case.data_sets[0]
    model = case.model
    graph_inputs = [i.name for i in model.graph.input
                    if i.name not in {t.name for t in model.graph.initializer}]
    result.stage = "inputs"
    feeds = {name: _to_array(v) for name, v in zip(graph_inputs, inputs_list)}
    expected = [_to_array(v) for v in outputs_list]
    for _ in range(8):
        logger = _Collect(trt, trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        result.stage = "parse"
        if parser.parse(model.SerializeToString()):
            break
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        dynamic = [e for e in errors if e.code() == trt.ErrorCode.UNSUPPORTED_NODE_DYNAMIC]
        wanted = [e.tensor for e in dynamic if e.tensor in feeds]
        if dynamic and not wanted:
            # The value is computed from graph inputs: supply the small integer ones (shapes,
            # axes, sizes) at build time.
            wanted = [name for name, v in feeds.items()
                      if v.dtype.kind in "iu" and v.size <= 64 and name not in result.frozen]
        if not wanted:
            result.reason = "; ".join(str(e) for e in errors)
            return
        for name in wanted:
            model = _freeze(model, name, feeds.pop(name))
            result.frozen.append(name)
    else:
        result.reason = "too many inputs needed at build time"
        return
    result.narrowed = any(m.startswith("narrowed") for m in logger.messages)
    result.widened = any(m.startswith("widened") for m in logger.messages)
    result.emulated = any(m.startswith("emulated") for m in logger.messages)
    converted = result.narrowed or result.widened or result.emulated
    feeds = _narrow_feeds(trt, network, feeds) if converted else feeds
    result.stage = "build"
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    dynamic = [t for t in inputs if any(d < 0 for d in t.shape)]
    shape_inputs = [t for t in inputs if t.is_shape_tensor]
    if dynamic or shape_inputs:
        profile = builder.create_optimization_profile()
        for t in dynamic:
            shape = feeds[t.name].shape
            profile.set_shape(t.name, shape, shape, shape)
        for t in shape_inputs:
            values = [int(v) for v in feeds[t.name].reshape(-1)]
            profile.set_shape_input(t.name, values, values, values)
        config.add_optimization_profile(profile)
    collecting = _Collect(trt)
    builder = trt.Builder(collecting)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        result.reason = "; ".join(collecting.errors) or "build failed"
        return
    engine = trt.Runtime(collecting).deserialize_cuda_engine(plan)
    if engine is None:
        result.reason = "; ".join(collecting.errors) or "deserialization failed"
        return
    result.stage = "run"
    context = engine.create_execution_context()
    got = context.infer(feeds)
    result.stage = "compare"
    names = [o.name for o in model.graph.output]
    for name, want in zip(names, expected):
        have = got[name]
        problem = compare(have, want, allow_narrowed=converted)
        if problem:
            result.reason = f"output '{name}': {problem}"
            return
    result.passed = True
    result.stage = ""


def _narrow_feeds(trt: Any, network: Any, feeds: dict[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """The test's inputs in the types the parser narrowed or widened their graph inputs
    to."""
    from engine.onnx.tensors import narrow_array

    types = {network.get_input(i).name: trt.nptype(network.get_input(i).dtype)
             for i in range(network.num_inputs)}
    return {name: narrow_array(v) if name in types and narrow_array(v).dtype == types[name]
            else v for name, v in feeds.items()}


class _Collect:
    """A logger keeping messages of ``threshold`` or worse (built lazily so the module imports
    without engine)."""

    def __new__(cls, trt: Any, threshold: Any = None) -> Any:
        limit = trt.Logger.ERROR if threshold is None else threshold

        class Collect(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []
                self.messages: list[str] = []

            def log(self, severity: Any, msg: str) -> None:
                if severity <= trt.Logger.ERROR:
                    self.errors.append(msg)
                if severity <= limit:
                    self.messages.append(msg)

        return Collect()


def compare(have: np.ndarray, want: np.ndarray, allow_narrowed: bool = False) -> str:
    """Empty when ``have`` matches ``want``; otherwise what differs. With ``allow_narrowed``,
    ``have`` may be of the type the parser narrows ``want``'s type to
    (``engine.onnx.tensors.NARROWED``), or the wider type it widens ``want``'s type to
    (``WIDENED``; ``want`` is widened, losslessly, before comparing)."""
    from engine.onnx.tensors import is_widened_dtype, narrow_array

    have, want = np.asarray(have), np.asarray(want)
    if have.shape != want.shape:
        return f"shape {have.shape}, expected {want.shape}"
    if allow_narrowed and have.dtype != want.dtype and (
            narrow_array(np.empty(0, want.dtype)).dtype == have.dtype
            or (is_widened_dtype(want.dtype) and have.dtype == np.int8)):
        # narrowing keeps integer values; floats are compared in float64
        if want.dtype.kind in "iu" or is_widened_dtype(want.dtype):
            want = want.astype(have.dtype)
        else:
            have = have.astype(want.dtype)
    if have.dtype != want.dtype:
        return f"dtype {have.dtype}, expected {want.dtype}"
    if want.dtype.kind in "biu" or want.dtype == np.bool_:
        bad = int(np.count_nonzero(have != want))
        return f"{bad} of {want.size} values differ" if bad else ""
    h, w = have.astype(np.float64), want.astype(np.float64)
    close = np.isclose(h, w, rtol=RTOL, atol=ATOL, equal_nan=True)
    if close.all():
        return ""
    worst = float(np.nanmax(np.abs(h - w)[~close])) if (~close).any() else 0.0
    return f"{int((~close).sum())} of {w.size} values differ (max abs error {worst:.3g})"


_SUFFIX = re.compile(r"_expanded(_ver\d+)?$")


def case_op(case: Any) -> str:
    """The op a case tests: its single node's op, or the op its name says (expanded tests)."""
    nodes = case.model.graph.node
    if len(nodes) == 1:
        return nodes[0].op_type
    return _OPS_BY_NAME.get(_SUFFIX.sub("", case.name), nodes[-1].op_type if nodes else "?")


_OPS_BY_NAME: dict[str, str] = {}


def collect_cases(pattern: str = "") -> list[Any]:
    from onnx.backend.test.case import node

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node.collect_testcases("")
    for c in cases:
        if c.model is not None and len(c.model.graph.node) == 1:
            _OPS_BY_NAME[c.name] = c.model.graph.node[0].op_type
    if pattern:
        cases = [c for c in cases if re.search(pattern, c.name)]
    return cases


def _init_worker() -> None:
    warnings.simplefilter("ignore")

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout()

    signal.signal(signal.SIGALRM, on_alarm)


def _run_with_alarm(case: Any) -> CaseResult:
    signal.alarm(CASE_TIMEOUT_S)
    try:
        return run_case(case)
    finally:
        signal.alarm(0)


def run_all(pattern: str = "", jobs: int = 2) -> list[CaseResult]:
    cases = collect_cases(pattern)
    if jobs <= 1:
        _init_worker()
        return [_run_with_alarm(c) for c in cases]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(jobs, initializer=_init_worker, maxtasksperchild=200) as pool:
        return list(pool.imap(_run_with_alarm, cases, chunksize=4))


def support_table(results: list[CaseResult]) -> str:
    """The Markdown page: overall rate, then one row per op."""
    by_op: dict[str, list[CaseResult]] = collections.defaultdict(list)
    for r in results:
        by_op[r.op].append(r)
    passed = sum(r.passed for r in results)
    frozen = sum(r.passed and bool(r.frozen) for r in results)
    narrowed = sum(r.passed and r.narrowed for r in results)
    widened = sum(r.passed and r.widened and not r.emulated for r in results)
    emulated = sum(r.passed and r.emulated for r in results)
    lines = [
        "# ONNX operator support",
        "",
        "Generated by `python -m engine.onnx.conformance` from the node test cases shipped with",
        "the `onnx` package: each case is parsed, built for the CPU target and run, and its",
        f"outputs compared with the expected ones (rtol {RTOL}, atol {ATOL}). Do not edit by hand.",
        "",
        f"**{passed} of {len(results)} cases pass "
        f"({100.0 * passed / max(len(results), 1):.1f}%)**;",
        f"{frozen} of them with some graph inputs supplied at build time (TensorRT needs axes,",
        "pads, sizes and the like as constants; see the module docstring),",
        f"{narrowed} of them narrowed: types TensorRT lacks (DOUBLE, INT16, UINT16, UINT32, "
        "UINT64)",
        "imported as FLOAT, INT32, INT32, INT64 and INT64 with a warning, as TensorRT's parser "
        "narrows",
        "DOUBLE (UINT64 values above 2^63 - 1 wrap); the",
        "outputs are compared with the expected outputs of the original types;",
        f"{widened} of them widened: types TensorRT lacks whose values a wider type holds "
        "exactly",
        "(FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1 as FLOAT; INT2, UINT2, UINT4 as "
        "INT8),",
        "compared after widening the expected outputs; and",
        f"{emulated} of them emulated: Casts to those types (and to INT4) computed by the",
        "`EmulatedCast_TRT` plugin, which rounds to the target type's values (ONNX's `saturate`",
        "included) and carries them widened.",
        "",
        "| op | opsets | passed | failed | why cases fail (first reasons) |",
        "|---|---|---|---|---|",
    ]
    for op in sorted(by_op):
        rs = by_op[op]
        ok = sum(r.passed for r in rs)
        opsets = sorted({r.opset for r in rs})
        reasons = collections.Counter(_short_reason(r) for r in rs if not r.passed)
        why = "; ".join(f"{reason} ({n})" for reason, n in reasons.most_common(2))
        lines.append(f"| {op} | {', '.join(map(str, opsets))} | {ok} | {len(rs) - ok} | "
                     f"{why.replace('|', '/')} |")
    lines.append("")
    return "\n".join(lines)


def _short_reason(r: CaseResult) -> str:
    text = re.sub(r"'[^']*'", "'…'", r.reason)
    text = re.sub(r"node \d+ \(.*?\): ", "", text)
    return f"{r.stage}: {text[:110]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", "--filter", default="", help="regex on case names")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("-v", "--verbose", action="store_true", help="print each failure")
    parser.add_argument("--out", default=None,
                        help="where to write the table (default docs/onnx-support.md when "
                             "running every case)")
    args = parser.parse_args(argv)
    results = run_all(args.filter, args.jobs)
    passed = sum(r.passed for r in results)
    if args.verbose:
        for r in results:
            if not r.passed:
                print(f"FAIL {r.name} [{r.op}] {r.stage}: {r.reason}")
    print(f"{passed}/{len(results)} passed ({100.0 * passed / max(len(results), 1):.1f}%)")
    out = args.out or (None if args.filter else os.path.join(
        os.path.dirname(__file__), "..", "..", "docs", "onnx-support.md"))
    if out:
        with open(out, "w") as f:
            f.write(support_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
