"""pypolygraphy: this engine against onnxruntime, and model inspection."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from engine.tools import polygraphy
from engine.tools.compare import compare_output
from engine.tools.polygraphy import main
from engine.tools.trtexec import main as trtexec_main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_matches_onnxruntime(mlp_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["run", str(mlp_onnx), "--engine", "--onnxrt", "--target", "cpu",
                          "--input-shapes", "x:[3,16]"], capsys)
    assert code == 0, err
    assert "Comparing Output: 'y' (dtype=float32, shape=(3, 8))" in out
    assert "Mismatched elements: 0 / 24" in out
    assert re.search(r"Absolute Difference \| max=[\d.e+-]+ at \(\d+, \d+\), mean=", out)
    assert "PASSED | Output: 'y' | Difference is within tolerance (rel=1e-05, abs=1e-05)" in out
    assert "PASSED | All outputs matched | Outputs: ['y']" in out
    assert out.strip().splitlines()[-1].startswith("[I] PASSED | Command: pypolygraphy run")


def test_run_reports_a_mismatch(mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    real = polygraphy.run_onnxruntime

    def off_by_one_element(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = real(model, feeds)
        outputs["y"] = outputs["y"].copy()
        outputs["y"][1, 2] += 0.5
        return outputs

    monkeypatch.setattr(polygraphy, "run_onnxruntime", off_by_one_element)
    code, out, _ = run(["run", str(mlp_onnx), "--trt", "--onnxrt", "--target", "cpu",
                        "--input-shapes", "x:[2,16]", "--atol", "1e-3", "--rtol", "1e-3"],
                       capsys)
    assert code == 1
    assert "Mismatched elements: 1 / 16" in out
    assert "Absolute Difference | max=0.5 at (1, 2)" in out
    assert "FAILED | Output: 'y' | Difference is NOT within tolerance (rel=0.001, abs=0.001)" \
        in out
    assert "[I] FAILED | Command:" in out


def test_run_needs_both_runners(mlp_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["run", str(mlp_onnx), "--onnxrt"], capsys)
    assert code == 2
    assert err == "pypolygraphy: error: run compares two runners: give both --engine (or " \
                  "--trt) and --onnxrt\n"


def test_inspect_plan_and_onnx(static_onnx: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "m.plan"
    assert trtexec_main([f"--onnx={static_onnx}", f"--saveEngine={plan}", "--skipInference",
                         "--device=cpu"]) == 0
    capsys.readouterr()
    code, from_plan, err = run(["inspect", "model", str(plan)], capsys)
    assert code == 0, err
    assert "target cpu" in from_plan
    assert "Input: 'x' FLOAT [2, 16]" in from_plan and "Output: 'y' FLOAT [2, 8]" in from_plan
    layer_lines = [line for line in from_plan.splitlines() if line.startswith("  [")]
    assert layer_lines and all("tactic=cpu." in line and "precision=FLOAT" in line
                               for line in layer_lines)
    code, from_onnx, err = run(["inspect", "model", str(static_onnx), "--target", "cpu"], capsys)
    assert code == 0, err
    assert [line for line in from_onnx.splitlines() if line.startswith("  [")] == layer_lines


def test_inspect_refuses_a_damaged_plan(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.plan"
    bad.write_bytes(b"PYTRTPLN" + bytes(10))
    code, _, err = run(["inspect", "model", str(bad)], capsys)
    assert code == 1
    assert err.startswith("pypolygraphy: error: truncated plan")


def test_compare_statistics() -> None:
    reference = np.array([[1.0, -2.0], [0.0, 4.0]], np.float32)
    actual = np.array([[1.0, -2.2], [0.0, 4.0]], np.float32)
    result = compare_output("y", actual, reference, atol=0.1, rtol=0.01)
    assert not result.passed and result.mismatches == 1 and result.count == 4
    assert result.max_abs == pytest.approx(0.2, rel=1e-5)
    assert result.mean_abs == pytest.approx(0.05, rel=1e-5)
    assert result.max_rel == pytest.approx(0.1, rel=1e-5)
    assert result.worst_index == (0, 1)
    assert compare_output("y", actual, reference, atol=0.3, rtol=0).passed
    assert compare_output("y", actual, reference, atol=0, rtol=0.2).passed
    nan = np.array([np.nan, 1.0])
    assert compare_output("y", nan, nan, 0, 0).passed
    assert not compare_output("y", nan, np.array([0.0, 1.0]), 1, 1).passed
    shape = compare_output("y", actual, reference[:1], 1, 1)
    assert not shape.passed and "differs from the reference's (1, 2)" in shape.lines(1, 1)[0]
