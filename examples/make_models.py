"""Make a small model repository for the server's quick start.

    python examples/make_models.py            # writes examples/models/
    python -m server --model-repository examples/models

Models (Triton's layout, each with a config.pbtxt):

- ``add_sub`` (plan): OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, FP32 [-1, 16],
  dynamic batching up to 8.
- ``identity_int32`` (plan): OUTPUT0 = INPUT0, INT32 [-1, 4], no configuration file (the
  server completes it from the engine).
- ``add_sub_onnx`` (ONNX): the same graph as ``add_sub`` written with onnx.helper; the server
  builds it into a plan when it loads (needs the ONNX parser, ``engine.onnx``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine as trt  # noqa: E402

MAX_BATCH = 8
WIDTH = 16

ADD_SUB_CONFIG = f"""name: "{{name}}"
platform: "{{platform}}"
max_batch_size: {MAX_BATCH}
input [
  {{{{ name: "INPUT0" data_type: TYPE_FP32 dims: [ {WIDTH} ] }}}},
  {{{{ name: "INPUT1" data_type: TYPE_FP32 dims: [ {WIDTH} ] }}}}
]
output [
  {{{{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ {WIDTH} ] }}}},
  {{{{ name: "OUTPUT1" data_type: TYPE_FP32 dims: [ {WIDTH} ] }}}}
]
instance_group [ {{{{ count: 2 kind: KIND_CPU }}}} ]
dynamic_batching {{{{
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 500
}}}}
"""


def plan_add_sub() -> bytes:
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network = builder.create_network(0)
    a = network.add_input("INPUT0", trt.float32, (-1, WIDTH))
    b = network.add_input("INPUT1", trt.float32, (-1, WIDTH))
    for name, op in (("OUTPUT0", trt.ElementWiseOperation.SUM),
                     ("OUTPUT1", trt.ElementWiseOperation.SUB)):
        out = network.add_elementwise(a, b, op).get_output(0)
        out.name = name
        network.mark_output(out)
    return _build(builder, network, ["INPUT0", "INPUT1"], WIDTH)


def plan_identity_int32() -> bytes:
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network = builder.create_network(0)
    x = network.add_input("INPUT0", trt.int32, (-1, 4))
    out = network.add_identity(x).get_output(0)
    out.name = "OUTPUT0"
    network.mark_output(out)
    return _build(builder, network, ["INPUT0"], 4)


def _build(builder: trt.Builder, network: trt.INetworkDefinition, inputs: list[str],
           width: int) -> bytes:
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    for name in inputs:
        profile.set_shape(name, (1, width), (MAX_BATCH, width), (MAX_BATCH, width))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "building the example plan failed"
    return bytes(plan)


def onnx_add_sub() -> bytes:
    shape = ["batch", WIDTH]
    graph = helper.make_graph(
        [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
         helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"])],
        "add_sub",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("INPUT0", "INPUT1")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
         for n in ("OUTPUT0", "OUTPUT1")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_repository(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    models = {
        "add_sub": ("tensorrt_plan", "model.plan", plan_add_sub(), True),
        "identity_int32": ("tensorrt_plan", "model.plan", plan_identity_int32(), False),
        "add_sub_onnx": ("onnxruntime_onnx", "model.onnx", onnx_add_sub(), True),
    }
    for name, (platform, filename, data, configured) in models.items():
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / filename).write_bytes(data)
        if configured:
            (root / name / "config.pbtxt").write_text(
                ADD_SUB_CONFIG.format(name=name, platform=platform))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).resolve().parent / "models")
    args = parser.parse_args()
    write_repository(args.output)
    print(f"wrote {sorted(p.name for p in args.output.iterdir())} to {args.output}")


if __name__ == "__main__":
    main()
