"""The committed stubs in server/grpc/_generated/ are what scripts/gen_protos.py makes from
protos/ today: regenerate into a temporary directory and compare file by file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "server" / "grpc" / "_generated"
# The grpcio version the generator stamps into the stubs (they refuse an older grpcio); a
# newer grpcio-tools release stamps its own, with the same code.
STAMP = re.compile(r"^GRPC_GENERATED_VERSION = '([0-9.]+)'$", re.MULTILINE)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _pinned_grpcio() -> tuple[int, ...]:
    pyproject = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'"grpcio>=([0-9.]+)"', pyproject)
    assert match, "pyproject.toml pins no grpcio floor"
    return _version(match.group(1))


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out",
                    str(tmp_path)], check=True, capture_output=True)
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()}
    committed = {p.name: p.read_text() for p in COMMITTED.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(committed), "stub files differ: run scripts/gen_protos.py"
    stale = [name for name in fresh
             if STAMP.sub("", fresh[name]) != STAMP.sub("", committed[name])]
    assert not stale, f"stale generated stubs {stale}: run scripts/gen_protos.py"


def test_stubs_accept_the_grpcio_that_pyproject_allows() -> None:
    """The stubs refuse a grpcio older than the one they were generated for, so the
    dependency's floor must be at least that version."""
    floor = _pinned_grpcio()
    for path in COMMITTED.glob("*_grpc.py"):
        match = STAMP.search(path.read_text())
        assert match, f"{path.name} has no GRPC_GENERATED_VERSION"
        assert _version(match.group(1)) <= floor, \
            f"{path.name} needs grpcio>={match.group(1)}; pyproject.toml allows {floor}"


def test_wire_names_match_kserve() -> None:
    """The service and message names clients address on the wire."""
    from server.grpc._generated import grpc_service_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert {m.name for m in service.methods} >= {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
        "ModelInfer", "ModelStreamInfer", "ModelConfig", "ModelStatistics", "RepositoryIndex",
        "RepositoryModelLoad", "RepositoryModelUnload", "SystemSharedMemoryStatus",
        "SystemSharedMemoryRegister", "SystemSharedMemoryUnregister"}
    fields = pb.ModelInferRequest.DESCRIPTOR.fields_by_name
    assert fields["raw_input_contents"].number == 7 and fields["outputs"].number == 6
    assert pb.ModelInferResponse.DESCRIPTOR.fields_by_name["raw_output_contents"].number == 6


_DESCRIBE = """
import json, sys
module = sys.argv[1]
m = __import__(module, fromlist=["DESCRIPTOR"])
out = {}
def walk(msg, prefix):
    out[prefix] = sorted([f.name, f.number, f.type, f.is_repeated] for f in msg.fields)
    for nested in msg.nested_types:
        walk(nested, prefix + "." + nested.name)
for name, msg in m.DESCRIPTOR.message_types_by_name.items():
    walk(msg, name)
service = m.DESCRIPTOR.services_by_name["GRPCInferenceService"]
out["rpcs"] = sorted([x.name, x.input_type.name, x.output_type.name] for x in service.methods)
print(json.dumps(out))
"""


def test_every_message_and_rpc_is_wire_compatible_with_tritons_protos() -> None:
    """Each of our messages, fields (name, number, type, repeated) and rpcs exists identically
    in the protos that tritonclient ships. Separate processes: both register ``inference.*``."""
    import json
    import subprocess
    import sys

    def describe(module: str, cwd: str) -> dict:
        result = subprocess.run([sys.executable, "-c", _DESCRIBE, module], cwd=cwd,
                                capture_output=True, text=True, timeout=120, check=True)
        return json.loads(result.stdout)

    root = str(Path(__file__).resolve().parents[2])
    ours = describe("server.grpc._generated.grpc_service_pb2", root)
    theirs = describe("tritonclient.grpc.service_pb2", "/")
    assert len(ours) > 50
    for name, fields in ours.items():
        assert name in theirs, f"{name} is not in Triton's protos"
        if name == "rpcs":
            assert {tuple(r) for r in fields} <= {tuple(r) for r in theirs["rpcs"]}
        else:
            assert fields == [f for f in theirs[name] if f[0] in {g[0] for g in fields}], name
