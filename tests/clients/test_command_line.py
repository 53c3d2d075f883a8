"""``python -m clients``: each command against a running server, output read as a user
would read it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import engine as trt
from clients.__main__ import main
from tests.grpc.serving import RunningServer, identity_plan, running_server, write_repository


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    repository = write_repository(tmp_path_factory.mktemp("cli") / "models")
    with running_server(repository) as running:
        yield running


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_health_models_infer_stats(server: RunningServer, protocol: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    code, out, _ = run(capsys, "--url", url, "health", "add_sub")
    assert code == 0
    assert out.splitlines() == ["server  live: yes  ready: yes", "model add_sub  ready: yes"]

    code, out, _ = run(capsys, "--url", url, "models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["MODEL", "VERSION", "STATE", "REASON"]
    assert ["add_sub", "1", "READY"] in [line.split() for line in lines[1:]]

    a = np.arange(16, dtype=np.float32).reshape(1, 16)
    np.save(tmp_path / "a.npy", a)
    code, out, _ = run(capsys, "--url", url, "infer", "add_sub",
                       "--input", f"INPUT0={tmp_path / 'a.npy'}",
                       "--input", "INPUT1=" + str([[1.0] * 16]),
                       "--output", "OUTPUT0", "--save", str(tmp_path / "out"))
    assert code == 0
    assert out.splitlines()[0] == "OUTPUT0  float32  shape [1, 16]"
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "OUTPUT0.npy"), a + 1)

    code, out, _ = run(capsys, "--url", url, "stats", "add_sub")
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:4] == ["MODEL", "VERSION", "INFERENCES", "EXECUTIONS"]
    assert row.split()[:2] == ["add_sub", "1"] and int(row.split()[2]) >= 1


def test_upload_and_errors(server: RunningServer, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "m"
    (directory / "1").mkdir(parents=True)
    (directory / "1" / "model.plan").write_bytes(identity_plan(trt.int32))
    code, out, _ = run(capsys, "--url", server.grpc_url, "upload", "cli_model", str(directory))
    assert code == 0
    assert out.strip() == f"uploaded cli_model from {directory}; ready: yes"

    code, _, err = run(capsys, "--url", server.grpc_url, "infer", "nope",
                       "--input", "X=[1]")
    assert code == 1
    assert err.startswith("error: [NOT_FOUND] unknown model 'nope'")
