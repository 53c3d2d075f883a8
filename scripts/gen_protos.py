"""Generate the Python protobuf and gRPC stubs from ``protos/`` into ``server/grpc/_generated/``.

    .venv/bin/python scripts/gen_protos.py            # rewrite the committed stubs
    .venv/bin/python scripts/gen_protos.py --out DIR  # write them elsewhere (staleness test)

The stubs are never edited by hand. protoc writes ``import model_config_pb2`` as a top-level
import; it is rewritten to a relative one so the stubs live inside a package.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DEFAULT_OUT = ROOT / "server" / "grpc" / "_generated"
PACKAGE_DOC = '"""Generated from protos/ by scripts/gen_protos.py: do not edit."""\n'
_TOP_LEVEL_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)


def generate(out: Path) -> list[Path]:
    """Run protoc over every ``protos/*.proto``; return the files written."""
    from grpc_tools import protoc  # a dev dependency: only this script needs it

    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    status = protoc.main(["grpc_tools.protoc", f"-I{PROTOS}", f"-I{include}",
                          f"--python_out={out}", f"--pyi_out={out}",
                          f"--grpc_python_out={out}", *sources])
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}")
    written = sorted(p for p in out.iterdir() if p.suffix in (".py", ".pyi"))
    for path in written:
        text = path.read_text()
        path.write_text(_TOP_LEVEL_IMPORT.sub(r"from . import \1 as \2", text))
    init = out / "__init__.py"
    init.write_text(PACKAGE_DOC)
    return sorted({*written, init})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
