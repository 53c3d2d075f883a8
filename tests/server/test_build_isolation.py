"""ONNX models built in a child process (``server.core.build.run_isolated``; the default for
GPU builds, ``--build-isolation``): the plan comes back as bytes and serves as one built in
the server's process; the child's errors come back with their kind and message; a child that
dies is an error the server survives."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import engine as trt
from server.core import build
from server.core.config import ModelConfig
from server.core.dataplane import DataPlane, ServerSettings
from server.core.devices import HOST
from server.core.errors import InvalidArgument, Unavailable
from tests.server import isolation_helpers


def _add_one_model(path: Path) -> Path:
    one = numpy_helper.from_array(np.ones((2, 3), np.float32), "one")
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "add_one",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                              [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def _run(path: Path, isolate: str) -> np.ndarray:
    engines, platform = build.engines_for(path, ModelConfig(name="add_one"), [HOST], None,
                                          True, isolate)
    assert platform == "onnxruntime_onnx"
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    return engines[HOST].create_execution_context().infer({"x": x})["y"]


def test_an_isolated_build_serves_as_one_built_here(tmp_path: Path, monkeypatch) -> None:
    path = _add_one_model(tmp_path / "add_one" / "1" / "model.onnx")
    children = []
    run_isolated = build.run_isolated

    def counted(function, request):  # noqa: ANN001, ANN202
        children.append(function.__name__)
        return run_isolated(function, request)

    monkeypatch.setattr(build, "run_isolated", counted)
    isolated = _run(path, "always")
    assert children == ["_plan_for_request"]
    here = _run(path, "gpu")  # a CPU build stays in the server's process by default
    assert children == ["_plan_for_request"]
    want = np.arange(6, dtype=np.float32).reshape(2, 3) + 1
    np.testing.assert_array_equal(isolated, want)
    np.testing.assert_array_equal(here, want)


def test_the_child_is_another_process_and_gets_the_request() -> None:
    assert int(build.run_isolated(isolation_helpers.own_pid, b"")) != os.getpid()
    request = bytes(range(256)) * 4096  # a megabyte each way, through the pipes
    assert build.run_isolated(isolation_helpers.echo, request) == request[::-1]


@pytest.mark.parametrize("kind,error,message", [
    ("invalid", InvalidArgument, "^bad model$"),
    ("unavailable", Unavailable, "^no parser$"),
    ("other", InvalidArgument, "^the build failed: RuntimeError: boom$"),
])
def test_errors_come_back_with_their_kind(kind: str, error: type, message: str) -> None:
    text = {"invalid": "bad model", "unavailable": "no parser", "other": "boom"}[kind]
    with pytest.raises(error, match=message):
        build.run_isolated(isolation_helpers.fail, f"{kind}:{text}".encode())


def test_a_crash_while_building_is_an_error_and_the_server_goes_on(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"ended without a result \(exit code 3\)"):
        build.run_isolated(isolation_helpers.crash, b"3")
    path = _add_one_model(tmp_path / "add_one" / "1" / "model.onnx")
    np.testing.assert_array_equal(_run(path, "always"),
                                  np.arange(6, dtype=np.float32).reshape(2, 3) + 1)


def test_malformed_onnx_in_an_isolated_build_names_the_parser_error(tmp_path: Path) -> None:
    path = tmp_path / "broken" / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a protobuf")
    with pytest.raises(InvalidArgument, match="model.onnx could not be parsed"):
        _run(path, "always")


def test_an_unknown_isolation_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="build isolation 'sometimes'"):
        DataPlane(ServerSettings(model_repository=tmp_path, build_isolation="sometimes"))


def test_the_command_line_sets_it() -> None:
    from server.__main__ import parse_args, settings_from_args

    args = parse_args(["--model-repository", "models", "--build-isolation", "never"])
    assert settings_from_args(args).build_isolation == "never"
    assert settings_from_args(parse_args(["--model-repository", "models"])).build_isolation \
        == "gpu"


def test_a_build_request_carries_every_build_setting() -> None:
    """The configuration crosses to the child in Triton's JSON form: the settings the plan
    cache keys on come out as they went in."""
    from server.core.config import config_from_pbtxt
    from server.core.devices import Device

    config = config_from_pbtxt('''
        name: "m"
        max_batch_size: 8
        parameters { key: "precision" value { string_value: "fp16" } }
        parameters { key: "profile.x" value { string_value: "1x3:4x3:8x3" } }
    ''', "m")
    request = build._build_request(b"model bytes", config, trt.DeviceType.GPU, True,
                                   Device("gpu", 1))
    data, again, target, autocomplete, device = build._read_request(request)
    assert (data, target, autocomplete, device.name) == (b"model bytes", trt.DeviceType.GPU,
                                                         True, "gpu:1")
    assert build._settings_key(again, target, True) == build._settings_key(config, target, True)
    assert again.profile("x") == config.profile("x")
