"""The gRPC face with a real channel: what only raw protobuf can exercise (typed contents,
streams, shared memory, status codes, limits, deadlines, health and reflection)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from engine.kernels.backends import gpu_available
from server.grpc._generated import grpc_service_pb2 as pb
from server.grpc._generated import grpc_service_pb2_grpc as pb_grpc
from tests.grpc.serving import RunningServer, running_server, write_repository

Tensor = pb.ModelInferRequest.InferInputTensor


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repository(tmp_path_factory.mktemp("grpc") / "models")


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[RunningServer]:
    with running_server(repository, max_request_bytes=1 << 20) as running:
        yield running


@pytest.fixture
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_url) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.GRPCInferenceServiceStub:
    return pb_grpc.GRPCInferenceServiceStub(channel)


def add_sub_request(a: np.ndarray, b: np.ndarray, **kwargs: object) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name="add_sub",
        inputs=[Tensor(name="INPUT0", datatype="FP32", shape=list(a.shape)),
                Tensor(name="INPUT1", datatype="FP32", shape=list(b.shape))],
        raw_input_contents=[a.tobytes(), b.tobytes()], **kwargs)  # type: ignore[arg-type]


def outputs_of(reply: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    dtypes = {"FP32": np.float32, "INT32": np.int32}
    return {o.name: np.frombuffer(raw, dtypes[o.datatype]).reshape(list(o.shape))
            for o, raw in zip(reply.outputs, reply.raw_output_contents)}


def test_infer_with_raw_contents(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.full((2, 16), 0.5, np.float32)
    reply = stub.ModelInfer(add_sub_request(a, b, id="request-7"))
    assert (reply.model_name, reply.model_version, reply.id) == ("add_sub", "1", "request-7")
    out = outputs_of(reply)
    np.testing.assert_array_equal(out["OUTPUT0"], a + b)
    np.testing.assert_array_equal(out["OUTPUT1"], a - b)


def test_infer_with_typed_contents(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    x = np.array([[1, -2, 3, -4], [5, 6, 7, 2**31 - 1]], np.int32)
    request = pb.ModelInferRequest(model_name="identity_int32", inputs=[Tensor(
        name="INPUT0", datatype="INT32", shape=[2, 4],
        contents=pb.InferTensorContents(int_contents=x.reshape(-1).tolist()))])
    np.testing.assert_array_equal(outputs_of(stub.ModelInfer(request))["OUTPUT0"], x)
    short = pb.ModelInferRequest(model_name="identity_int32", inputs=[Tensor(
        name="INPUT0", datatype="INT32", shape=[2, 4],
        contents=pb.InferTensorContents(int_contents=[1, 2, 3]))])
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(short)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "3 values in contents.int_contents" in caught.value.details()


def test_stream_answers_each_request_and_survives_errors(
        stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    a = np.ones((1, 16), np.float32)
    requests = [add_sub_request(a * k, a, id=f"r{k}") for k in range(3)]
    requests.insert(1, pb.ModelInferRequest(model_name="missing_model", id="bad"))
    replies = list(stub.ModelStreamInfer(iter(requests)))
    assert len(replies) == 4
    assert "missing_model" in replies[1].error_message
    good = [r.infer_response for i, r in enumerate(replies) if i != 1]
    assert [r.id for r in good] == ["r0", "r1", "r2"]
    for k, reply in enumerate(good):
        assert not replies[0].error_message
        np.testing.assert_array_equal(outputs_of(reply)["OUTPUT0"], a * k + a)


@pytest.mark.parametrize(("call", "request_message", "code"), [
    ("ModelMetadata", pb.ModelMetadataRequest(name="nope"), grpc.StatusCode.NOT_FOUND),
    ("ModelConfig", pb.ModelConfigRequest(name="add_sub", version="9"),
     grpc.StatusCode.NOT_FOUND),
    ("ModelMetadata", pb.ModelMetadataRequest(name="../etc"), grpc.StatusCode.INVALID_ARGUMENT),
    ("ModelInfer", pb.ModelInferRequest(model_name="add_sub", inputs=[
        Tensor(name="INPUT0", datatype="FP32", shape=[1, 16])], raw_input_contents=[b"123"]),
     grpc.StatusCode.INVALID_ARGUMENT),
    ("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="not_on_disk"),
     grpc.StatusCode.NOT_FOUND),
])
def test_core_errors_map_to_status_codes(stub: pb_grpc.GRPCInferenceServiceStub, call: str,
                                         request_message: object,
                                         code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, call)(request_message)
    assert caught.value.code() == code
    assert caught.value.details()


def test_request_over_the_size_limit_is_resource_exhausted(
        stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    big = np.zeros((8, 16), np.float32)
    request = add_sub_request(big, big)
    request.raw_input_contents.append(b"\0" * (2 << 20))  # over the 1 MiB request limit
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds the limit" in caught.value.details()


def test_message_size_limit_of_the_transport(repository: Path) -> None:
    with running_server(repository, load=(), max_receive_message_bytes=4096) as small:
        with grpc.insecure_channel(small.grpc_url) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            a = np.zeros((8, 16), np.float32)
            request = add_sub_request(a, a)
            request.raw_input_contents.append(b"\0" * 8192)  # over 4096: refused unread
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert stub.ServerLive(pb.ServerLiveRequest()).live


def test_deadline_is_honoured(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    a = np.zeros((1, 16), np.float32)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(add_sub_request(a, a), timeout=-1)  # a deadline already passed
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert stub.ModelInfer(add_sub_request(a, a), timeout=30).outputs  # still serving


def test_management_calls_need_the_token(repository: Path) -> None:
    with running_server(repository, load=(), api_token="s3cret") as guarded:
        with grpc.insecure_channel(guarded.grpc_url) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            load = pb.RepositoryModelLoadRequest(model_name="add_sub")
            with pytest.raises(grpc.RpcError) as caught:
                stub.RepositoryModelLoad(load)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            stub.RepositoryModelLoad(load, metadata=[("authorization", "Bearer s3cret")])
            assert stub.ModelReady(pb.ModelReadyRequest(name="add_sub")).ready
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="add_sub"),
                                       metadata=[("authorization", "Bearer s3cret")])
            assert not stub.ModelReady(pb.ModelReadyRequest(name="add_sub")).ready


@pytest.fixture
def shm_key() -> Iterator[str]:
    key = f"/grpc_test_{uuid.uuid4().hex[:12]}"
    path = Path("/dev/shm") / key.lstrip("/")
    path.write_bytes(b"\0" * 4096)
    yield key
    path.unlink()


def test_shared_memory_inputs_and_outputs(stub: pb_grpc.GRPCInferenceServiceStub,
                                          shm_key: str) -> None:
    path = Path("/dev/shm") / shm_key.lstrip("/")
    a = np.arange(16, dtype=np.float32).reshape(1, 16)
    b = np.full((1, 16), 2.0, np.float32)
    with open(path, "r+b") as f:
        f.seek(256)  # the region starts at 256; inputs at region offsets 0 and 64
        f.write(a.tobytes() + b.tobytes())
    stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(
        name="region", key=shm_key, offset=256, byte_size=1024))
    status = stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest())
    assert dict(status.regions)["region"].byte_size == 1024
    assert status.regions["region"].key == shm_key

    def by_reference(offset: int, size: int) -> dict[str, pb.InferParameter]:
        return {"shared_memory_region": pb.InferParameter(string_param="region"),
                "shared_memory_offset": pb.InferParameter(int64_param=offset),
                "shared_memory_byte_size": pb.InferParameter(int64_param=size)}

    request = pb.ModelInferRequest(
        model_name="add_sub",
        inputs=[Tensor(name="INPUT0", datatype="FP32", shape=[1, 16],
                       parameters=by_reference(0, 64)),
                Tensor(name="INPUT1", datatype="FP32", shape=[1, 16],
                       parameters=by_reference(64, 64))],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(
                     name="OUTPUT0", parameters=by_reference(512, 64)),
                 pb.ModelInferRequest.InferRequestedOutputTensor(name="OUTPUT1")])
    reply = stub.ModelInfer(request)
    assert reply.raw_output_contents[0] == b""  # written to shared memory instead
    assert reply.outputs[0].parameters["shared_memory_byte_size"].int64_param == 64
    with open(path, "rb") as f:
        f.seek(256 + 512)
        np.testing.assert_array_equal(np.frombuffer(f.read(64), np.float32), (a + b)[0])
    np.testing.assert_array_equal(
        np.frombuffer(reply.raw_output_contents[1], np.float32), (a - b)[0])

    past_end = pb.ModelInferRequest(model_name="add_sub", inputs=[
        Tensor(name="INPUT0", datatype="FP32", shape=[1, 16], parameters=by_reference(992, 64)),
        Tensor(name="INPUT1", datatype="FP32", shape=[1, 16], parameters=by_reference(0, 64))])
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(past_end)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "runs past the region's 1024 bytes" in caught.value.details()

    stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(name="region"))
    assert not stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest()).regions
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_shared_memory_register_checks_the_object(stub: pb_grpc.GRPCInferenceServiceStub,
                                                  shm_key: str) -> None:
    for key, size, code in [("/no_such_key_here", 16, grpc.StatusCode.NOT_FOUND),
                            ("../etc/passwd", 16, grpc.StatusCode.INVALID_ARGUMENT),
                            (shm_key, 8192, grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(grpc.RpcError) as caught:
            stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(
                name="r", key=key, byte_size=size))
        assert caught.value.code() == code, key
    assert not os.path.exists("/dev/shm/etc")


@pytest.mark.skipif(gpu_available(), reason="checks the answer of a server without a GPU")
def test_cuda_shared_memory_needs_a_gpu(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.CudaSharedMemoryRegister(pb.CudaSharedMemoryRegisterRequest(
            name="gpu_io", raw_handle=bytes(64), device_id=0, byte_size=256))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details().startswith("CUDA shared memory needs a GPU")
    assert not stub.CudaSharedMemoryStatus(pb.CudaSharedMemoryStatusRequest()).regions
    with pytest.raises(grpc.RpcError) as caught:
        stub.CudaSharedMemoryStatus(pb.CudaSharedMemoryStatusRequest(name="gpu_io"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_service(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "inference.GRPCInferenceService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.Such"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_describes_the_service(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    assert "inference.GRPCInferenceService" in database.get_services()
    described = database.FindFileContainingSymbol("inference.GRPCInferenceService")
    assert described.package == "inference"
    assert "ModelInfer" in [m.name for m in described.service[0].method]
