"""The V3 plugin API: a plugin class and its creator, the registry, plan records, tactics,
pointers, and the refusals."""

import contextlib
import time

import numpy as np
import pytest

import engine as trt
from engine.plan.format import read_plan
from tests.support import CollectingLogger, run_network


class ScaleAddPlugin(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild,
                     trt.IPluginV3OneRuntime):
    """y = alpha * x0 + x1; x0 and x1 of one shape."""

    def __init__(self, alpha, calls=None):
        self.plugin_name, self.plugin_version, self.plugin_namespace = "ScaleAdd", "1", "test"
        self.num_outputs = 1
        self.alpha = float(alpha)
        self.calls = calls if calls is not None else []

    def clone(self):
        return ScaleAddPlugin(self.alpha, self.calls)

    def get_output_data_types(self, input_types):
        return [input_types[0]]

    def get_output_shapes(self, inputs, shape_inputs, exprBuilder):  # noqa: N803
        return [inputs[0]]

    def configure_plugin(self, inp, out):
        self.calls.append(("configure", tuple(inp[0].min), tuple(inp[0].opt), tuple(inp[0].max)))

    def on_shape_change(self, inputs, outputs):
        self.calls.append(("shape", tuple(inputs[0].dims)))

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        outputs[0][...] = self.alpha * inputs[0] + inputs[1]

    def get_fields_to_serialize(self):
        return trt.PluginFieldCollection([
            trt.PluginField("alpha", np.array([self.alpha], np.float32),
                            trt.PluginFieldType.FLOAT32)])


class ScaleAddCreator(trt.IPluginCreatorV3One):
    def __init__(self):
        self.name, self.plugin_version, self.plugin_namespace = "ScaleAdd", "1", "test"
        self.field_names = trt.PluginFieldCollection(
            [trt.PluginField("alpha", None, trt.PluginFieldType.FLOAT32)])
        self.phases = []
        self.calls = []

    def create_plugin(self, name, fc, phase):
        self.phases.append(phase)
        return ScaleAddPlugin(fc[0].data[0], self.calls)


class ClassCreator(ScaleAddCreator):
    """Creates plugins of one ScaleAddPlugin subclass, named after the class."""

    def __init__(self, cls):
        super().__init__()
        self.cls = cls
        self.name = cls.__name__

    def create_plugin(self, name, fc, phase):
        return self.cls(fc[0].data[0])


@contextlib.contextmanager
def registered(cls):
    creator = ClassCreator(cls)
    assert trt.get_plugin_registry().register_creator(creator, "test")
    try:
        yield creator
    finally:
        trt.get_plugin_registry().deregister_creator(creator)


@pytest.fixture
def creator():
    creator = ScaleAddCreator()
    registry = trt.get_plugin_registry()
    assert registry.register_creator(creator, "test")
    yield creator
    registry.deregister_creator(creator)


def test_registry_register_get_deregister(creator):
    registry = trt.get_plugin_registry()
    assert registry.get_creator("ScaleAdd", "1", "test") is creator
    assert registry.get_creator("ScaleAdd", "1", "") is None
    assert creator in registry.all_creators
    assert not registry.register_creator(ScaleAddCreator(), "test")  # already there
    assert trt.find_plugin_creator("ScaleAdd", None, "test") is creator
    assert trt.find_plugin_creator("ScaleAdd", "1", "test") is creator
    assert registry.deregister_creator(creator)
    assert registry.get_creator("ScaleAdd", "1", "test") is None
    assert not registry.deregister_creator(creator)
    assert registry.register_creator(creator, "test")


def test_plugin_runs_with_dynamic_shapes_through_the_plan(creator):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(
        np.float32)
    plugin = ScaleAddPlugin(2.5)

    def define(network, t):
        layer = network.add_plugin_v3([t["a"], t["b"]], [], plugin)
        assert isinstance(layer, trt.IPluginV3Layer) and layer.plugin is plugin
        assert tuple(layer.get_output(0).shape) == (-1, 5)
        return [layer.get_output(0)]

    (y,) = run_network(define, {"a": a, "b": b}, dynamic={"a": (-1, 5), "b": (-1, 5)})
    np.testing.assert_allclose(y, 2.5 * a + b, rtol=1e-6)
    # the builder configured its copy with the profile's ranges; the runtime made its own
    assert ("configure", (3, 5), (3, 5), (3, 5)) in plugin.calls
    assert ("shape", (3, 5)) in creator.calls
    assert trt.TensorRTPhase.RUNTIME in creator.phases


def _plan_with_plugin(plugin, logger=None):
    builder = trt.Builder(logger or trt.Logger())
    network = builder.create_network(0)
    a = network.add_input("a", trt.float32, (2, 2))
    b = network.add_input("b", trt.float32, (2, 2))
    y = network.add_plugin_v3([a, b], [], plugin).get_output(0)
    y.name = "y"
    network.mark_output(y)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.errors() if logger else None
    return plan


def test_plan_stores_only_the_record_and_needs_the_creator_to_load():
    # built without a registered creator: the builder clones the user's plugin
    plan = _plan_with_plugin(ScaleAddPlugin(3.0))
    header = read_plan(plan).header
    assert header["plugins"] == [{"layer": header["network"]["layers"][0]["name"],
                                  "name": "ScaleAdd", "version": "1", "namespace": "test",
                                  "tactic": 0}]
    attrs = header["network"]["layers"][0]["attrs"]
    assert sorted(attrs) == ["num_shape_inputs", "plugin_fields", "plugin_name",
                             "plugin_namespace", "plugin_tactic", "plugin_version"]
    with pytest.raises(trt.PlanError, match=r"plugin 'ScaleAdd' version '1' namespace 'test' "
                                            r"has no creator in the plugin registry"):
        trt.engine_from_plan(plan)
    logger = CollectingLogger()
    assert trt.Runtime(logger).deserialize_cuda_engine(plan) is None
    assert "has no creator" in logger.errors()[-1]
    creator = ScaleAddCreator()
    trt.get_plugin_registry().register_creator(creator, "test")
    try:
        context = trt.engine_from_plan(plan).create_execution_context()
        a = np.arange(4, dtype=np.float32).reshape(2, 2)
        np.testing.assert_allclose(context.infer({"a": a, "b": a})["y"], 4 * a)
        assert creator.phases == [trt.TensorRTPhase.RUNTIME]
    finally:
        trt.get_plugin_registry().deregister_creator(creator)


class TacticPlugin(ScaleAddPlugin):
    """Tactic 7 is slow, tactic 3 is fast; both compute the same."""

    def __init__(self, alpha, calls=None):
        super().__init__(alpha, calls)
        self.plugin_name = "Tactics"
        self.tactic = None

    def clone(self):
        return TacticPlugin(self.alpha, self.calls)

    def get_valid_tactics(self):
        return [7, 3]

    def set_tactic(self, tactic):
        self.tactic = tactic
        self.calls.append(("tactic", tactic))

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        if self.tactic == 7:
            time.sleep(0.005)
        super().enqueue(input_desc, output_desc, inputs, outputs, workspace, stream)


class TacticCreator(ScaleAddCreator):
    def __init__(self):
        super().__init__()
        self.name = "Tactics"

    def create_plugin(self, name, fc, phase):
        return TacticPlugin(fc[0].data[0])


def test_builder_times_plugin_tactics_and_the_runtime_sets_the_chosen_one():
    creator = TacticCreator()
    trt.get_plugin_registry().register_creator(creator, "test")
    try:
        plan = _plan_with_plugin(TacticPlugin(1.0))
        assert read_plan(plan).header["plugins"][0]["tactic"] == 3
        engine = trt.engine_from_plan(plan)
        layer = engine._network._layers[0]
        assert layer.plugin_tactic == 3 and layer.plugin.tactic == 3
        a = np.ones((2, 2), np.float32)
        np.testing.assert_array_equal(engine.create_execution_context().infer(
            {"a": a, "b": a})["y"], 2 * a)
    finally:
        trt.get_plugin_registry().deregister_creator(creator)


class PointerPlugin(ScaleAddPlugin):
    """Takes host pointers, as a TensorRT plugin takes device pointers."""

    enqueue_takes_pointers = True

    def __init__(self, alpha, calls=None):
        super().__init__(alpha, calls)
        self.plugin_name = "PointerPlugin"

    def clone(self):
        return PointerPlugin(self.alpha)

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        assert all(isinstance(p, int) for p in (*inputs, *outputs)) and stream == 0
        count = int(np.prod(input_desc[0].dims))
        view = [np.ctypeslib.as_array((np.ctypeslib.ctypes.c_float * count).from_address(p))
                for p in (*inputs, *outputs)]
        view[2][...] = self.alpha * view[0] + view[1]


def test_plugin_may_take_pointers():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.full((2, 3), 0.5, np.float32)
    with registered(PointerPlugin):
        (y,) = run_network(lambda net, t: [net.add_plugin_v3([t["a"], t["b"]], [],
                                                             PointerPlugin(-1.0)).get_output(0)],
                           {"a": a, "b": b})
    np.testing.assert_array_equal(y, -a + b)


class NoFormatPlugin(ScaleAddPlugin):
    def clone(self):
        return NoFormatPlugin(self.alpha)

    def supports_format_combination(self, pos, in_out, num_inputs):
        return in_out[pos].desc.type == trt.float16


def test_unsupported_format_fails_the_build_naming_the_plugin():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    a = network.add_input("a", trt.float32, (2,))
    network.mark_output(network.add_plugin_v3([a, a], [], NoFormatPlugin(1.0)).get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    assert builder.build_serialized_network(network, config) is None
    assert "plugin 'ScaleAdd' supports no format for input 0 (FLOAT, LINEAR)" in logger.errors()[-1]


class ReshapePlugin(ScaleAddPlugin):
    """Output shape from a shape input's values: y = x reshaped to those dims."""

    def __init__(self, alpha, calls=None):
        super().__init__(alpha, calls)
        self.plugin_name = "ReshapePlugin"

    def clone(self):
        return ReshapePlugin(self.alpha)

    def get_output_shapes(self, inputs, shape_inputs, exprBuilder):  # noqa: N803
        return [shape_inputs[0]]

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        outputs[0][...] = inputs[0].reshape(outputs[0].shape)


def test_shape_inputs_reach_get_output_shapes():
    x = np.arange(6, dtype=np.float32)

    def define(network, t):
        dims = network.add_constant((2,), np.array([3, 2], np.int64)).get_output(0)
        layer = network.add_plugin_v3([t["x"]], [dims], ReshapePlugin(1.0))
        assert layer.num_shape_inputs == 1 and tuple(layer.get_output(0).shape) == (3, 2)
        return [layer.get_output(0)]

    with registered(ReshapePlugin):
        (y,) = run_network(define, {"x": x})
    np.testing.assert_array_equal(y, x.reshape(3, 2))


def test_plugin_describing_wrong_output_count_is_a_network_error():
    class Wrong(ScaleAddPlugin):
        def get_output_shapes(self, inputs, shape_inputs, exprBuilder):  # noqa: N803
            return [inputs[0], inputs[0]]

    network = trt.Builder(trt.Logger()).create_network(0)
    a = network.add_input("a", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match="declares 1 outputs but describes 1 types and 2"):
        network.add_plugin_v3([a, a], [], Wrong(1.0))


def test_dimension_expressions():
    b = trt.IExprBuilder()
    four = b.constant(4)
    assert b.operation(trt.DimensionOperation.CEIL_DIV, b.constant(7), b.constant(2)) \
        .get_constant_value() == 4
    assert b.operation(trt.DimensionOperation.MAX, four, b.constant(9)).get_constant_value() == 9
    assert ((four * 3 - 2) // 5).get_constant_value() == 2
    unknown = trt.IDimensionExpr(None)
    assert not (unknown + four).is_constant()
    assert trt.DimsExprs([2, unknown]).values() == (2, -1)
    with pytest.raises(ValueError, match="no constant value"):
        unknown.get_constant_value()
