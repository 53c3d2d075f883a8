"""pytrtexec as a user runs it: build from ONNX, save, load, benchmark, report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.builder.config import UNIMPLEMENTED_FLAGS, BuilderFlag
from engine.kernels.backends import gpu_available
from engine.plan.format import read_plan
from engine.tools.trtexec import main
from tests.tools.conftest import OUT, mlp_reference

QUICK = ["--duration=0", "--warmUp=0", "--iterations=5", "--device=cpu"]
STAT = r"min = [\d.e+-]+ ms, max = [\d.e+-]+ ms, mean = [\d.e+-]+ ms, median = [\d.e+-]+ ms, " \
       r"percentile\(90%\) = [\d.e+-]+ ms, percentile\(95%\) = [\d.e+-]+ ms, " \
       r"percentile\(99%\) = [\d.e+-]+ ms"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_build_save_and_benchmark_report(mlp_onnx: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    plan_path = tmp_path / "mlp.plan"
    code, out, err = run([f"--onnx={mlp_onnx}", f"--saveEngine={plan_path}",
                          "--minShapes=x:1x16", "--optShapes=x:4x16", "--maxShapes=x:8x16",
                          *QUICK], capsys)
    assert code == 0, err
    contents = read_plan(plan_path.read_bytes())
    assert contents.header["target"]["backend"] == "cpu"
    assert contents.header["profiles"][0]["x"] == [[1, 16], [4, 16], [8, 16]]
    assert "Inference shapes: x: 4x16" in out  # the profile's opt shape
    assert re.search(r"Throughput: [\d.e+]+ qps", out)
    for label in ("Latency", "Enqueue Time", "H2D Latency", "CPU Compute Time", "D2H Latency"):
        assert re.search(rf"\[I\] {label}: {STAT}", out), label
    assert re.search(r"Total Host Walltime: [\d.e+-]+ s", out)
    timed = int(re.search(r"Timed (\d+) inferences", out).group(1))
    assert timed >= 5
    assert out.strip().splitlines()[-1].startswith("&&&& PASSED pytrtexec --onnx=")


def test_load_engine_with_shapes_inputs_and_exports(mlp_onnx: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    plan_path = tmp_path / "mlp.plan"
    assert main([f"--onnx={mlp_onnx}", f"--saveEngine={plan_path}", "--maxShapes=x:8x16",
                 "--optShapes=x:2x16", "--minShapes=x:1x16", "--skipInference",
                 "--device=cpu"]) == 0
    x = np.random.default_rng(3).standard_normal((3, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    times, outputs = tmp_path / "times.json", tmp_path / "out.npz"
    code, out, err = run([f"--loadEngine={plan_path}", "--shapes=x:3x16",
                          f"--loadInputs=x:{tmp_path / 'x.npy'}", f"--exportTimes={times}",
                          f"--exportOutput={outputs}", "--iterations=7", "--duration=0",
                          "--warmUp=0"], capsys)
    assert code == 0, err
    records = json.loads(times.read_text())
    assert len(records) >= 7
    keys = {"startInMs", "endInMs", "startComputeMs", "endComputeMs", "startOutMs", "endOutMs",
            "inMs", "computeMs", "outMs", "latencyMs", "endToEndMs"}
    for record in records:
        assert set(record) == keys
        assert record["startInMs"] <= record["endInMs"] <= record["endComputeMs"] \
            <= record["endOutMs"]
        assert record["latencyMs"] == pytest.approx(
            record["inMs"] + record["computeMs"] + record["outMs"])
    with np.load(outputs) as saved:
        np.testing.assert_allclose(saved["y"], mlp_reference(x), rtol=1e-5, atol=1e-6)
        assert saved["y"].shape == (3, OUT)


def test_raw_binary_inputs_and_streams(mlp_onnx: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    x = np.full((2, 16), 0.5, np.float32)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    outputs = tmp_path / "out.npz"
    code, out, err = run([f"--onnx={mlp_onnx}", "--shapes=x:2x16",
                          f"--loadInputs=x:{tmp_path / 'x.bin'}", "--infStreams=2",
                          "--noDataTransfers", f"--exportOutput={outputs}", *QUICK], capsys)
    assert code == 0, err
    assert "on 2 stream(s)" in out
    with np.load(outputs) as saved:
        np.testing.assert_allclose(saved["y"], mlp_reference(x), rtol=1e-5, atol=1e-6)


def test_dump_and_export_layer_info(static_onnx: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    info = tmp_path / "layers.json"
    code, out, err = run([f"--onnx={static_onnx}", "--dumpLayerInfo",
                          f"--exportLayerInfo={info}", "--skipInference", "--device=cpu"],
                         capsys)
    assert code == 0, err
    assert "Layer Information:" in out
    assert "Input: 'x' FLOAT [2, 16]" in out
    dumped = [line for line in out.splitlines() if line.startswith("  [")]
    assert dumped and all("tactic=cpu." in line and "precision=FLOAT" in line
                          for line in dumped)
    assert dumped[-1].endswith("-> [y]")
    # Written by the library's engine inspector where it exists, else from the plan header;
    # both list one entry per layer.
    assert len(json.loads(info.read_text())["Layers"]) == len(dumped)


def test_builder_options_reach_the_plan(mlp_onnx: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    plan_path, cache = tmp_path / "m.plan", tmp_path / "cache.json"
    code, out, err = run([f"--onnx={mlp_onnx}", f"--saveEngine={plan_path}", "--fp16",
                          "--memPoolSize=workspace:64M", "--builderOptimizationLevel=1",
                          "--tacticSources=-CUDNN,+CUBLAS", f"--timingCacheFile={cache}",
                          "--skipInference", "--device=cpu"], capsys)
    assert code == 0, err
    builder = read_plan(plan_path.read_bytes()).header["builder"]
    assert builder["optimization_level"] == 1
    assert builder["flags"] & 1  # BuilderFlag.FP16
    assert json.loads(cache.read_text())["format"] == "pytrt-timing-cache"
    assert f"Saved timing cache to {cache}" in out


def test_plan_version_only(static_onnx: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    plan_path = tmp_path / "m.plan"
    assert main([f"--onnx={static_onnx}", f"--saveEngine={plan_path}", "--skipInference",
                 "--device=cpu"]) == 0
    capsys.readouterr()
    code, out, _ = run([f"--loadEngine={plan_path}", "--getPlanVersionOnly"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "Plan was created with pytrt version 0.1.0 (plan format v1)"
    assert "Throughput" not in out


@pytest.mark.parametrize("flag, builder_flag", [("--int8", BuilderFlag.INT8),
                                                 ("--fp8", BuilderFlag.FP8)])
def test_refused_precisions_fail_in_one_line(mlp_onnx: Path, flag: str,
                                             builder_flag: BuilderFlag,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # While a precision's feature is missing the library refuses its flag; the tool must
    # turn that refusal into one line and exit status 1 before building anything.
    monkeypatch.setitem(UNIMPLEMENTED_FLAGS, builder_flag, "a feature under test")
    code, out, err = run([f"--onnx={mlp_onnx}", flag, *QUICK], capsys)
    assert code == 1
    assert err == (f"pytrtexec: error: {flag}: BuilderFlag.{builder_flag.name} is not "
                   f"implemented yet (a feature under test); refusing it rather than building "
                   f"without it\n")
    assert "Engine built" not in out


@pytest.mark.parametrize("argv, message", [
    ([], "give a model"),
    (["--onnx=missing.onnx"], "--onnx: no such file missing.onnx"),
    (["--onnx=m.onnx", "--bogus"], "unrecognized arguments: --bogus"),
    (["--loadEngine=p.plan", "--onnx=m.onnx"], "exclude each other"),
    (["--onnx={model}", "--shapes=x:2xq"], "--shapes: 'x:2xq': dimensions must be integers"),
    (["--onnx={model}", "--shapes=y:2x16"], "--shapes: ['y'] are not inputs of the network"),
    (["--onnx={model}", "--memPoolSize=heap:1G"], "--memPoolSize: unknown pool 'heap'"),
    (["--onnx={model}", "--tacticSources=CUDNN"], "--tacticSources: 'CUDNN': expected +NAME"),
    (["--onnx={model}", "--builderOptimizationLevel=9"], "is not in 0..5"),
    (["--onnx={model}", "--calib=c.cache"], "--calib needs --int8"),
    (["--onnx={model}", "--device=tpu"], "--device: 'tpu': expected cpu, gpu"),
    (["--onnx={model}", "--iterations=many"], "argument --iterations: invalid int value"),
])
def test_bad_arguments_fail_in_one_line(mlp_onnx: Path, argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([a.format(model=mlp_onnx) for a in argv], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err


def test_cuda_graph_needs_a_gpu_engine(static_onnx: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([f"--onnx={static_onnx}", "--useCudaGraph", *QUICK], capsys)
    assert code == 1
    assert "--useCudaGraph: CUDA graphs need an engine built for the GPU target" in err


def test_gpu_device_needs_a_gpu(static_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [f"--onnx={static_onnx}", "--device=gpu", "--duration=0", "--warmUp=0",
            "--iterations=2"]
    code, out, err = run(argv, capsys)
    if gpu_available():
        assert code == 0 and "GPU Compute Time" in out, err
    else:
        assert code == 1
        assert err == "pytrtexec: error: --device=gpu: no CUDA device with CuPy is usable " \
                      "here; use --device=cpu\n"


def test_console_module_runs_as_a_program(static_onnx: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.tools.trtexec", f"--onnx={static_onnx}", *QUICK],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    assert "=== Performance summary ===" in result.stdout
    assert "&&&& PASSED" in result.stdout


def test_dump_and_export_profile(static_onnx: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--dumpProfile: per-layer times from a profiling run after the timed one, one row per
    engine layer plus the total; --exportProfile writes the same rows as JSON."""
    import engine as trt

    plan_path, profile = tmp_path / "static.plan", tmp_path / "profile.json"
    code, out, err = run([f"--onnx={static_onnx}", f"--saveEngine={plan_path}",
                          "--dumpProfile", f"--exportProfile={profile}", *QUICK], capsys)
    assert code == 0, err
    layers = [name for name, _, _ in trt.engine_from_plan(plan_path.read_bytes()).layer_tactics]
    assert "=== Profile (5 iterations) ===" in out
    table = out[out.index("Time(ms)"):].splitlines()
    assert table[0].split() == ["Time(ms)", "Avg.(ms)", "Median(ms)", "Time(%)", "Layer"]
    rows = table[1:1 + len(layers)]
    assert sorted(line.split(None, 4)[4] for line in rows) == sorted(layers)
    assert table[1 + len(layers)].split()[-1] == "Total"
    exported = json.loads(profile.read_text())
    assert [r["name"] for r in exported] == layers  # execution order
    assert all(r["count"] == 5 and r["timeMs"] >= 0 for r in exported)
    assert abs(sum(r["percentage"] for r in exported) - 100.0) < 1e-6
