"""A model directory in Triton's layout as what a load-with-files call sends: the
configuration as JSON text, and each ``<version>/model.plan|model.onnx`` as bytes.

A ``config.pbtxt`` is read with protobuf's text format into ``inference.ModelConfig`` and
sent as JSON (the load call takes JSON), so only the fields the protos declare survive.
"""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import json_format, text_format

from server.grpc._generated import model_config_pb2 as mc

MODEL_FILES = ("model.plan", "model.onnx")


def config_json_from_pbtxt(text: str) -> str:
    config = text_format.Parse(text, mc.ModelConfig())
    return json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True))


def model_from_directory(directory: Path, model: str) -> tuple[str, dict[str, bytes]]:
    """(JSON configuration, files by ``<version>/<name>``) of a model directory. Without a
    configuration file, a minimal one naming the model is sent (the server completes it
    from the engine)."""
    if (directory / "config.json").is_file():
        config = json.loads((directory / "config.json").read_text())
    elif (directory / "config.pbtxt").is_file():
        config = json.loads(config_json_from_pbtxt((directory / "config.pbtxt").read_text()))
    else:
        config = {}
    config["name"] = model  # the model is uploaded under the name asked for
    files = {f"{version.name}/{path.name}": path.read_bytes()
             for version in sorted(directory.iterdir()) if version.name.isdigit()
             for path in sorted(version.iterdir()) if path.name in MODEL_FILES}
    if not files:
        raise FileNotFoundError(f"{directory}: no <version>/model.plan or model.onnx found")
    return json.dumps(config), files
