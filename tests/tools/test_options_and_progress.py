"""Option parsers and the build progress display."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import engine as trt
from engine.tools.errors import UsageError
from engine.tools.onnx_build import BuildOptions, build_from_onnx
from engine.tools.options import (
    DeviceChoice,
    parse_device,
    parse_mem_pool_size,
    parse_shapes,
    parse_tactic_sources,
)
from engine.tools.progress import BuildProgress
from engine.tools.tool_logger import ToolLogger


def test_shape_specs() -> None:
    assert parse_shapes("--shapes", "x:1x3x8x8, mask:4,s:scalar,t:") == {
        "x": (1, 3, 8, 8), "mask": (4,), "s": (), "t": ()}
    assert parse_shapes("--shapes", "'a:b':2x2") == {"a:b": (2, 2)}
    with pytest.raises(UsageError, match="is not NAME:DIMS"):
        parse_shapes("--minShapes", "1x2")


def test_memory_pool_and_tactic_sources() -> None:
    assert parse_mem_pool_size("workspace:2G,tacticSharedMem:48K") == {
        "workspace": 2 << 30, "tacticSharedMem": 48 << 10}
    assert parse_mem_pool_size("workspace:1.5") == {"workspace": 3 << 19}
    everything = sum(1 << s for s in trt.TacticSource)
    mask = parse_tactic_sources("-CUDNN,-cublas_lt,+CUDNN,-CUBLAS", everything)
    assert mask == everything & ~(1 << trt.TacticSource.CUBLAS_LT) & ~(1 << trt.TacticSource.CUBLAS)


def test_devices() -> None:
    assert parse_device("CPU") == DeviceChoice("cpu")
    assert parse_device("gpu:1") == DeviceChoice("gpu", 1)
    assert parse_device("0") == DeviceChoice("gpu", 0)


def test_spinner_follows_the_builder_log(mlp_onnx: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    drawn: list[BuildProgress] = []

    def on_screen(forward: trt.ILogger, stream: object) -> BuildProgress:
        progress = BuildProgress(forward, screen, enabled=True)
        drawn.append(progress)
        return progress

    monkeypatch.setattr("engine.tools.onnx_build.BuildProgress", on_screen)
    log = io.StringIO()
    plan = build_from_onnx(BuildOptions(onnx=mlp_onnx, shapes={"x": (2, 16)},
                                        device=DeviceChoice("cpu")), ToolLogger(stream=log))
    assert plan.startswith(b"PYTRTPLN")
    layers = drawn[0].layers_done
    assert layers >= 1
    assert f"building: {layers} layers" in screen.getvalue()
    assert screen.getvalue().endswith("\r\x1b[K")  # the line is erased when the build ends
    assert "[I] tactic timing" in log.getvalue()  # messages still reach the tool's log


def test_progress_monitor_bar() -> None:
    screen = io.StringIO()
    bar = BuildProgress(ToolLogger(stream=io.StringIO()), screen, enabled=True)
    bar.phase_start("Building engine", None, 4)
    assert bar.step_complete("Building engine", 1) is True
    assert "Building engine [============            ] 2/4" in screen.getvalue()
    bar.phase_finish("Building engine")
    quiet = io.StringIO()
    BuildProgress(ToolLogger(stream=io.StringIO()), quiet).phase_start("x", None, 2)
    assert quiet.getvalue() == ""  # not a terminal: nothing drawn
