"""Quick plugins: a plugin as a description function and an implementation function."""

import numpy as np
import numpy.typing as npt
import pytest

import engine as trt
import engine.plugin as trtp
from tests.support import run_network


@trtp.register("qtest::affine")
def affine_desc(x: trtp.TensorDesc, scale: float, shift: npt.NDArray[np.float32],
                repeat: int, label: str, negate: bool) -> trtp.TensorDesc:
    return trtp.from_shape_expr([x.shape_expr[0], x.shape_expr[1] * repeat], x.dtype)


@trtp.impl("qtest::affine")
def affine_impl(x: trtp.Tensor, scale: float, shift: npt.NDArray[np.float32], repeat: int,
                negate: bool, outputs, stream) -> None:
    assert stream == 0
    value = np.tile(np.asarray(x) * scale + shift, (1, repeat))
    np.asarray(outputs[0])[...] = -value if negate else value


@trtp.register("qtest::split")
def split_desc(x: trtp.TensorDesc) -> tuple[trtp.TensorDesc, trtp.TensorDesc]:
    half = x.shape_expr[0] // 2
    return (trtp.from_shape_expr([half], x.dtype), trtp.from_shape_expr([half], trt.int32))


@trtp.impl("qtest::split")
def split_impl(x: trtp.Tensor, outputs) -> None:
    a = np.asarray(x)
    np.asarray(outputs[0])[...] = a[: len(a) // 2]
    np.asarray(outputs[1])[...] = a[len(a) // 2:].astype(np.int32)


def test_quick_plugin_with_every_attribute_kind_runs_through_a_plan():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    shift = np.array([0.5, -1.0, 2.0], np.float32)

    def define(network, t):
        layer = network.add_plugin(trtp.op.qtest.affine(t["x"], scale=2.0, shift=shift,
                                                        repeat=2, label="ok", negate=True))
        assert layer.plugin_name == "affine" and layer.plugin_namespace == "qtest"
        return [layer.get_output(0)]

    (y,) = run_network(define, {"x": x}, dynamic={"x": (-1, 3)})
    np.testing.assert_array_equal(y, -np.tile(x * 2.0 + shift, (1, 2)))


def test_quick_plugin_with_two_outputs_of_different_types():
    x = np.array([1.5, 2.5, 3.0, 4.0], np.float32)
    first, second = run_network(
        lambda net, t: [net.add_plugin(trtp.op.qtest.split(t["x"])).get_output(i)
                        for i in range(2)], {"x": x})
    np.testing.assert_array_equal(first, [1.5, 2.5])
    assert second.dtype == np.int32 and second.tolist() == [3, 4]


def test_quick_plugin_fields_round_trip_through_the_creator():
    creator = trt.get_plugin_registry().get_creator("affine", "1", "qtest")
    assert sorted(f.name for f in creator.field_names) == ["label", "negate", "repeat", "scale",
                                                          "shift"]
    plugin, _ = trtp.op.qtest.affine(None, scale=0.25, shift=np.array([1, 2], np.float32),
                                     repeat=3, label="héllo", negate=False)
    again = creator.create_plugin("p", plugin.get_fields_to_serialize(),
                                  trt.TensorRTPhase.RUNTIME)
    assert again.attributes["scale"] == 0.25 and again.attributes["repeat"] == 3
    assert again.attributes["label"] == "héllo" and again.attributes["negate"] is False
    np.testing.assert_array_equal(again.attributes["shift"], [1, 2])
    assert again.attributes["shift"].dtype == np.float32


def test_quick_plugin_refusals():
    with pytest.raises(ValueError, match="must look like 'namespace::name'"):
        trtp.register("no_namespace")
    with pytest.raises(ValueError, match="@impl before @register"):
        trtp.impl("qtest::missing")(lambda x, outputs: None)
    with pytest.raises(AttributeError, match="no quick plugin 'qtest::nothing'"):
        trtp.op.qtest.nothing()
    network = trt.Builder(trt.Logger()).create_network(0)
    x = network.add_input("x", trt.float32, (2, 3))
    with pytest.raises(trt.NetworkError, match=r"missing attributes \['label', 'negate'"):
        trtp.op.qtest.affine(x, scale=1.0, shift=np.zeros(3, np.float32), repeat=1)
