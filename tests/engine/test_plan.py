"""Plan format v1: round trips, memory mapping, and refusals of damaged or foreign plans."""

import hashlib
import mmap
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import engine as trt
from engine.network.scaled_weights import RowScaledArray
from engine.plan.format import CHECKSUM_SIZE, FORMAT_VERSION, MAGIC, read_plan, write_plan
from tests.support import CollectingLogger

WEIGHTS = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def make_plan() -> bytes:
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (2, 3, 4))
    x.set_dimension_name(0, "batch")
    y = network.add_identity(x).get_output(0)
    y.name = "y"
    c = network.add_constant((2, 3, 4), WEIGHTS).get_output(0)
    c.name = "c"
    network.mark_output(y)
    network.mark_output(c)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    plan = builder.build_serialized_network(network, config)
    assert plan is not None
    return bytes(plan)


@pytest.fixture(scope="module")
def plan() -> bytes:
    return make_plan()


def check_engine(engine: trt.ICudaEngine) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    out = engine.create_execution_context().infer({"x": x})
    np.testing.assert_array_equal(out["y"], x)
    np.testing.assert_array_equal(out["c"], WEIGHTS)


def test_plan_is_deterministic(plan):
    assert make_plan() == plan


def test_round_trip_through_disk_into_a_fresh_process(plan, tmp_path):
    path = tmp_path / "model.plan"
    path.write_bytes(plan)
    script = textwrap.dedent(f"""
        import numpy as np, engine as trt
        engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(open({str(path)!r}, "rb").read())
        x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 2
        out = engine.create_execution_context().infer({{"x": x}})
        assert np.array_equal(out["y"], x) and np.array_equal(out["c"], x / 2)
        print("ok", engine.num_io_tensors, [engine.get_tensor_name(i) for i in range(3)])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok 3 ['x', 'y', 'c']"


def test_memory_mapped_plan_keeps_weights_mapped(plan, tmp_path):
    path = tmp_path / "model.plan"
    path.write_bytes(plan)
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    engine = trt.engine_from_plan(mapped)  # the engine keeps the map alive
    check_engine(engine)
    (constant,) = [layer for layer in engine._network if layer.type == trt.LayerType.CONSTANT]
    weights = constant.weights.numpy()
    assert not weights.flags.owndata and not weights.flags.writeable
    assert np.shares_memory(weights, np.frombuffer(mapped, np.uint8))


def test_engine_serialize_gives_the_plan_back(plan):
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan)
    assert bytes(engine.serialize()) == plan


def test_host_memory_is_a_buffer_like_tensorrts(tmp_path):
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    network.mark_output(network.add_constant((2, 3, 4), WEIGHTS).get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    memory = builder.build_serialized_network(network, config)
    assert isinstance(memory, trt.IHostMemory)
    assert memory.dtype == trt.DataType.UINT8 and memory.nbytes == len(bytes(memory))
    assert memoryview(memory).nbytes == memory.nbytes and memory[:8] == MAGIC
    assert memory == bytes(memory) and bytes(memory) == memory and memory != b"other"
    path = tmp_path / "model.plan"
    with open(path, "wb") as f:
        f.write(memory)
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(path.read_bytes())
    out = engine.create_execution_context().infer({})
    np.testing.assert_array_equal(out[engine.get_tensor_name(0)], WEIGHTS)
    # The engine's weights are read-only views of the plan, even of a writable one.
    (constant,) = trt.engine_from_plan(memory)._network
    assert not constant.weights.numpy().flags.writeable
    assert trt.IHostMemory(memory) == memory


def test_weights_are_64_byte_aligned(plan):
    contents = read_plan(plan)
    _, _, _, _, blob_offset, _ = struct.unpack_from("<8sIIQQQ", plan, 0)
    assert blob_offset % 64 == 0
    for entry in contents.header["arrays"]:
        assert entry["offset"] % 64 == 0


def test_header_describes_the_plan(plan):
    header = read_plan(plan).header
    assert header["library_version"] == trt.__version__
    assert header["target"]["backend"] == "cpu"
    assert [e["name"] for e in header["io"]] == ["x", "y", "c"]
    assert len(header["tactics"]) == len(header["network"]["layers"]) == 2
    assert header["network"]["tensors"][0]["dimension_names"] == {"0": "batch"}


def refusal(data) -> str:
    logger = CollectingLogger()
    assert trt.Runtime(logger).deserialize_cuda_engine(data) is None
    (message,) = logger.errors()
    with pytest.raises(trt.PlanError):
        trt.engine_from_plan(data)
    return message


def resign(data: bytearray) -> bytes:
    """Recompute the checksum, so that the checks behind it are reached."""
    body = bytes(data[:-CHECKSUM_SIZE])
    return body + hashlib.sha256(body).digest()


def test_truncated_plan_is_refused_as_truncated(plan):
    assert "truncated plan" in refusal(plan[:-1])
    assert "truncated plan" in refusal(plan[:len(plan) // 2])
    assert "truncated plan" in refusal(plan[:20])


def test_bit_flip_is_refused_as_corrupted(plan):
    data = bytearray(plan)
    data[len(plan) - 100] ^= 0x10
    assert "checksum mismatch" in refusal(bytes(data))


def test_foreign_data_is_refused_as_foreign():
    assert "foreign" in refusal(b"\x7fELF" + bytes(100))
    assert "empty plan" in refusal(b"")
    assert "not a plan" in refusal(b"abc")
    onnx_like = b"\x08\x07\x12\x07pytorch" + bytes(64)
    assert "foreign" in refusal(onnx_like)


def test_other_format_version_is_refused_with_both_versions(plan):
    data = bytearray(plan)
    struct.pack_into("<I", data, 8, FORMAT_VERSION + 1)
    message = refusal(resign(data))
    assert f"format version {FORMAT_VERSION + 1}" in message
    assert f"reads version {FORMAT_VERSION}" in message


def test_trailing_bytes_are_refused(plan):
    assert "unexpected bytes" in refusal(plan + b"\0")


def test_plan_for_another_target_is_refused(plan):
    from engine.plan.format import write_plan

    contents = read_plan(plan)
    header = dict(contents.header)
    header.pop("arrays")
    header["target"] = {"backend": "gpu", "compute_capability": "9.0", "device_name": "H100"}
    message = refusal(write_plan(header, [np.array(a) for a in contents.arrays]))
    assert "built for the GPU" in message and "9.0" in message


def test_plan_naming_an_unknown_tactic_is_refused(plan):
    from engine.plan.format import write_plan

    contents = read_plan(plan)
    header = dict(contents.header)
    header.pop("arrays")
    header["tactics"] = ["cpu.identity", "cpu.nonexistent"]
    assert "tactic" in refusal(write_plan(header, [np.array(a) for a in contents.arrays]))


def test_random_mutations_never_crash_or_hang(plan):
    """Hundreds of random truncations, flips, insertions and header edits (re-signed, so the
    checks past the checksum run): each is refused with PlanError or, if harmless, loads."""
    rng = np.random.default_rng(2026)
    header_end = 40 + struct.unpack_from("<Q", plan, 16)[0]
    outcomes = {"refused": 0, "loaded": 0}
    for case in range(400):
        data = bytearray(plan)
        kind = case % 5
        if kind == 0:
            data = data[: rng.integers(0, len(data))]
        elif kind == 1:
            for _ in range(rng.integers(1, 4)):
                data[rng.integers(0, len(data))] ^= 1 << rng.integers(0, 8)
        elif kind == 2:
            pos = rng.integers(0, len(data))
            data[pos:pos] = bytes(rng.integers(0, 256, rng.integers(1, 16), dtype=np.uint8))
        else:  # edit the JSON header in place and re-sign
            for _ in range(rng.integers(1, 6)):
                pos = rng.integers(40, header_end)
                data[pos] = rng.choice(list(b'0123456789[]{}",:-.aeflnrstu '))
            data = bytearray(resign(data))
        try:
            engine = trt.engine_from_plan(bytes(data))
        except trt.PlanError as exc:
            assert str(exc)
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1  # a harmless edit (say, a name): the engine must still run
        context = engine.create_execution_context()
        try:
            context.infer({"x": np.ones((2, 3, 4), np.float32)})
        except trt.EngineError:
            pass
    assert outcomes["refused"] >= 300, outcomes


def test_magic_is_the_documented_one(plan):
    assert plan[:8] == MAGIC


def test_plan_of_many_megabytes_is_written_and_hashed_whole():
    """Megabytes of arrays, one of them computed as it is written: written in runs by
    several threads, hashed in order; read back bit for bit, checksum over every byte."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(n).astype(np.float32) for n in (3, 900_000, 17, 2_000_000)]
    base = rng.standard_normal((64, 4096)).astype(np.float32)
    scale = rng.uniform(0.5, 2, 64).astype(np.float32)
    arrays.insert(2, RowScaledArray(base, (scale,)))
    data = write_plan({"note": "big"}, arrays)
    assert hashlib.sha256(data[:-CHECKSUM_SIZE]).digest() == data[-CHECKSUM_SIZE:]
    contents = read_plan(bytes(data))
    want = [*arrays[:2], base * scale[:, None], *arrays[3:]]
    assert len(contents.arrays) == len(want)
    for got, expected in zip(contents.arrays, want):
        np.testing.assert_array_equal(got, expected)
