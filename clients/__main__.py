"""``python -m clients``: talk to the inference server from the command line.

    python -m clients health
    python -m clients models
    python -m clients infer add_sub --input INPUT0=a.npy --input INPUT1='[[1, 2, 3]]'
    python -m clients upload my_model path/to/my_model
    python -m clients stats [MODEL]

``--url`` picks the server and the protocol (default ``localhost:8001``, gRPC;
``http://localhost:8000`` for REST). Input values are a ``.npy`` file (read without pickle)
or a JSON list, converted to the datatype the model's metadata declares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from clients.client import Client
from clients.errors import InferenceServerError
from clients.tensors import NUMPY_OF_DATATYPE


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def cmd_health(client: Client, args: argparse.Namespace) -> str:
    lines = [f"server  live: {_yes(client.is_server_live())}  "
             f"ready: {_yes(client.is_server_ready())}"]
    for model in args.models:
        lines.append(f"model {model}  ready: {_yes(client.is_model_ready(model))}")
    return "\n".join(lines)


def cmd_models(client: Client, args: argparse.Namespace) -> str:
    rows = [[m.get("name", ""), m.get("version", ""), m.get("state", ""), m.get("reason", "")]
            for m in client.repository_index(ready_only=args.ready)]
    return _table(rows, ["MODEL", "VERSION", "STATE", "REASON"]) if rows else "(no models)"


def _input_array(text: str, datatype: str, name: str) -> np.ndarray:
    if text.endswith(".npy"):
        array = np.load(Path(text), allow_pickle=False)
    else:
        try:
            array = np.array(json.loads(text))
        except ValueError as error:
            raise SystemExit(f"input {name}: neither a .npy file nor a JSON list "
                             f"({error})") from None
    if datatype == "BYTES":
        return array.astype(np.bytes_).astype(object)
    return array.astype(NUMPY_OF_DATATYPE[datatype])


def cmd_infer(client: Client, args: argparse.Namespace) -> str:
    declared = {t["name"]: t["datatype"]
                for t in client.model_metadata(args.model, args.version)["inputs"]}
    inputs = {}
    for item in args.input:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--input {item!r}: expected NAME=FILE.npy or NAME=JSON")
        if name not in declared:
            raise SystemExit(f"--input {name}: model {args.model} has inputs {sorted(declared)}")
        inputs[name] = _input_array(value, declared[name], name)
    outputs = client.infer(args.model, inputs, args.output or None, args.version)
    lines = []
    for name, array in outputs.items():
        lines.append(f"{name}  {array.dtype}  shape {list(array.shape)}")
        lines.append(np.array2string(array, threshold=64, edgeitems=3, precision=6))
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.save(args.save / f"{name}.npy", array, allow_pickle=False)
    return "\n".join(lines)


def cmd_upload(client: Client, args: argparse.Namespace) -> str:
    client.upload_model(args.model, args.directory)
    ready = client.is_model_ready(args.model)
    return f"uploaded {args.model} from {args.directory}; ready: {_yes(ready)}"


def _ms(duration: dict[str, Any]) -> str:
    count = int(duration.get("count", 0))
    return f"{int(duration.get('ns', 0)) / count / 1e6:.3f}" if count else "-"


def cmd_stats(client: Client, args: argparse.Namespace) -> str:
    rows = []
    for s in client.statistics(args.model or "", args.version):
        inference = s.get("inference_stats", {})
        rows.append([s["name"], s["version"], str(s.get("inference_count", 0)),
                     str(s.get("execution_count", 0)),
                     str(inference.get("success", {}).get("count", 0)),
                     str(inference.get("fail", {}).get("count", 0)),
                     _ms(inference.get("success", {})), _ms(inference.get("queue", {})),
                     _ms(inference.get("compute_infer", {}))])
    header = ["MODEL", "VERSION", "INFERENCES", "EXECUTIONS", "OK", "FAILED", "AVG MS",
              "QUEUE MS", "COMPUTE MS"]
    return _table(rows, header) if rows else "(no statistics: no model is loaded)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m clients",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="localhost:8001",
                        help="host:port for gRPC (default), http://host:port for REST")
    parser.add_argument("--token", default=None, help="API token for upload")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per call")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("health", help="is the server live and ready (and models)")
    p.add_argument("models", nargs="*", help="models whose readiness to show")
    p.set_defaults(run=cmd_health)
    p = commands.add_parser("models", help="the repository index")
    p.add_argument("--ready", action="store_true", help="only models that are ready")
    p.set_defaults(run=cmd_models)
    p = commands.add_parser("infer", help="run a model on inputs")
    p.add_argument("model")
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                   help="NAME=FILE.npy or NAME=JSON list; repeat per input")
    p.add_argument("--output", action="append", default=[], metavar="NAME",
                   help="only these outputs (default: all)")
    p.add_argument("--version", default="")
    p.add_argument("--save", type=Path, default=None, help="write each output as DIR/NAME.npy")
    p.set_defaults(run=cmd_infer)
    p = commands.add_parser("upload", help="upload a model directory and load it")
    p.add_argument("model")
    p.add_argument("directory", type=Path)
    p.set_defaults(run=cmd_upload)
    p = commands.add_parser("stats", help="inference statistics")
    p.add_argument("model", nargs="?", default="")
    p.add_argument("--version", default="")
    p.set_defaults(run=cmd_stats)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with Client(args.url, token=args.token, timeout=args.timeout) as client:
            print(args.run(client, args))
    except InferenceServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
