"""The network definition API: inputs, outputs, layers, inference, typing rules."""

import numpy as np
import pytest

import engine as trt


@pytest.fixture
def network():
    return trt.Builder(trt.Logger()).create_network(0)


def test_inputs_outputs_and_layers(network):
    x = network.add_input("x", trt.float32, (2, 3))
    assert x.is_network_input and not x.is_network_output
    assert x.name == "x" and x.shape == (2, 3) and x.dtype == trt.float32
    layer = network.add_identity(x)
    y = layer.get_output(0)
    network.mark_output(y)
    assert y.is_network_output
    assert network.num_inputs == 1 and network.num_outputs == 1 and network.num_layers == 1
    assert network.get_input(0) is x and network.get_output(0) is y
    assert network.get_layer(0) is layer and network[0] is layer and list(network) == [layer]
    assert network.get_layer(5) is None and network.get_input(3) is None
    assert layer.type == trt.LayerType.IDENTITY
    assert layer.num_inputs == 1 and layer.num_outputs == 1 and layer.get_input(0) is x
    assert layer.name == "(Unnamed Layer* 0) [Identity]"
    layer.name = "copy"
    assert layer.name == "copy"
    network.unmark_output(y)
    assert network.num_outputs == 0 and not y.is_network_output


def test_input_cannot_be_an_output(network):
    x = network.add_input("x", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match="add an identity layer"):
        network.mark_output(x)


def test_duplicate_input_names_are_refused(network):
    network.add_input("x", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match="already has an input of that name"):
        network.add_input("x", trt.float32, (2,))


def test_tensor_from_another_network_is_refused(network):
    other = trt.Builder(trt.Logger()).create_network(0)
    x = other.add_input("x", trt.float32, (2,))
    with pytest.raises(trt.NetworkError, match="belongs to another network"):
        network.add_identity(x)


def test_shapes_follow_changes_upstream(network):
    x = network.add_input("x", trt.float32, (2, 3))
    y = network.add_identity(network.add_identity(x).get_output(0)).get_output(0)
    assert y.shape == (2, 3)
    x.shape = (4, -1)
    assert y.shape == (4, -1)
    layer = y.producer
    c = network.add_constant((5,), np.zeros(5, np.float32)).get_output(0)
    layer.set_input(0, c)
    assert y.shape == (5,)


def test_cycle_is_reported_with_a_layer_name(network):
    x = network.add_input("x", trt.float32, (2,))
    a = network.add_identity(x)
    b = network.add_identity(a.get_output(0))
    a.set_input(0, b.get_output(0))
    with pytest.raises(trt.NetworkError, match="on a cycle"):
        _ = b.get_output(0).shape


def test_precision_on_weakly_typed_network(network):
    x = network.add_input("x", trt.float32, (2,))
    layer = network.add_identity(x)
    assert not layer.precision_is_set
    layer.precision = trt.float16
    assert layer.precision == trt.float16 and layer.precision_is_set
    layer.reset_precision()
    assert not layer.precision_is_set
    layer.set_output_type(0, trt.float16)
    assert layer.output_type_is_set(0) and layer.get_output_type(0) == trt.float16
    assert layer.get_output(0).dtype == trt.float16
    layer.reset_output_type(0)
    assert layer.get_output(0).dtype == trt.float32


def test_strongly_typed_network_refuses_precision_settings():
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = trt.Builder(trt.Logger()).create_network(flags)
    assert network.get_flag(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    layer = network.add_identity(network.add_input("x", trt.float32, (2,)))
    with pytest.raises(trt.NetworkError, match="not allowed in a strongly typed network"):
        layer.precision = trt.float16
    with pytest.raises(trt.NetworkError, match="not allowed in a strongly typed network"):
        layer.set_output_type(0, trt.float16)


def test_dynamic_range_and_dimension_names(network):
    x = network.add_input("x", trt.float32, (-1, 3))
    assert x.set_dynamic_range(-2.0, 2.0) and x.dynamic_range == (-2.0, 2.0)
    assert not x.set_dynamic_range(3.0, 1.0)
    x.set_dimension_name(0, "batch")
    assert x.get_dimension_name(0) == "batch"


def test_deep_network_infers_quickly(network):
    t = network.add_input("x", trt.float32, (1, 8))
    for _ in range(3000):
        t = network.add_identity(t).get_output(0)
    assert t.shape == (1, 8)
