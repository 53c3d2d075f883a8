"""Refitting weights, version compatibility, hardware compatibility levels, and reading a
plan's header without loading it."""

import numpy as np
import pytest

import engine as trt
from engine.plan.compatibility import check_hardware_compatibility, check_library_version
from engine.plan.format import read_plan, write_plan
from tests.support import CollectingLogger

W1 = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
B1 = np.array([1, -1, 0.5, 2], np.float32)


def plan_for(weights, bias, flags=(), logger=None, hook=None):
    logger = logger or CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (2, 3))
    w = network.add_constant((3, 4), weights)
    w.get_output(0).name = "fc.weight"
    b = network.add_constant((1, 4), bias.reshape(1, 4))
    b.get_output(0).name = "fc.bias"
    b.name = "bias_layer"
    y = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, w.get_output(0),
                                    trt.MatrixOperation.NONE).get_output(0)
    out = network.add_elementwise(y, b.get_output(0), trt.ElementWiseOperation.SUM).get_output(0)
    out.name = "y"
    network.mark_output(out)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    for flag in flags:
        config.set_flag(flag)
    if hook:
        hook(config)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None or hook, logger.errors()
    return plan


def outputs(plan, x):
    return trt.engine_from_plan(plan).create_execution_context().infer({"x": x})["y"]


def test_refitted_engine_equals_one_built_with_the_new_weights():
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    engine = trt.engine_from_plan(plan_for(W1, B1, [trt.BuilderFlag.REFIT]))
    assert engine.refittable
    context = engine.create_execution_context()
    np.testing.assert_allclose(context.infer({"x": x})["y"], x @ W1 + B1, rtol=1e-5)
    logger = CollectingLogger()
    refitter = trt.Refitter(engine, logger)
    assert refitter.get_all_weights() == ["fc.bias", "fc.weight"]
    assert refitter.get_missing_weights() == []
    w2, b2 = -2 * W1 + 1, B1[::-1].copy()
    assert refitter.set_named_weights("fc.weight", w2)
    assert refitter.set_weights("bias_layer", trt.WeightsRole.CONSTANT, b2.reshape(1, 4))
    np.testing.assert_array_equal(refitter.get_named_weights("fc.weight").numpy(), w2)
    assert not refitter.set_named_weights("fc.weight", np.zeros(5, np.float32))
    assert "5 values of FLOAT, the engine has 12 of FLOAT" in logger.errors()[-1]
    assert not refitter.set_named_weights("nope", w2)
    assert "no refittable weights named 'nope'" in logger.errors()[-1]
    assert refitter.refit_cuda_engine()
    expected = outputs(plan_for(w2, b2), x)
    np.testing.assert_allclose(expected, x @ w2 + b2, rtol=1e-5)
    np.testing.assert_array_equal(context.infer({"x": x})["y"], expected)
    np.testing.assert_array_equal(engine.create_execution_context().infer({"x": x})["y"],
                                  expected)
    # the refitted engine serializes with its new weights
    np.testing.assert_array_equal(outputs(engine.serialize(), x), expected)


def test_refit_needs_a_refittable_engine():
    engine = trt.engine_from_plan(plan_for(W1, B1))
    assert not engine.refittable
    with pytest.raises(trt.EngineError, match="not refittable"):
        trt.Refitter(engine, trt.Logger())


def test_refit_builds_keep_weights_unfolded():
    # without REFIT, constant folding may merge the bias into other constants; with it, each
    # weight keeps its constant layer (and its name)
    header = read_plan(plan_for(W1, B1, [trt.BuilderFlag.REFIT])).header
    names = {rec["name"] for rec in header["network"]["tensors"]}
    assert {"fc.weight", "fc.bias"} <= names


def rewrite_header(plan, **changes):
    contents = read_plan(plan)
    header = {k: v for k, v in contents.header.items() if k != "arrays"}
    for key, value in changes.items():
        header[key] = value if not callable(value) else value(header[key])
    return write_plan(header, contents.arrays)


def test_version_compatible_plans_load_in_later_versions_of_the_same_major():
    plain = plan_for(W1, B1)
    compatible = plan_for(W1, B1, [trt.BuilderFlag.VERSION_COMPATIBLE])
    assert trt.inspect_plan(compatible).compatibility["version_compatible"] is True
    x = np.ones((2, 3), np.float32)
    older_plain = rewrite_header(plain, library_version="0.0.1")
    older_compatible = rewrite_header(compatible, library_version="0.0.1")
    with pytest.raises(trt.PlanError, match="built by library version 0.0.1; this is "
                                            + trt.__version__.replace(".", r"\.")):
        trt.engine_from_plan(older_plain)
    np.testing.assert_allclose(outputs(older_compatible, x), x @ W1 + B1, rtol=1e-5)
    with pytest.raises(trt.PlanError, match="loads in later versions of major version 99"):
        trt.engine_from_plan(rewrite_header(compatible, library_version="99.0.0"))
    check_library_version("1.2.0", {"version_compatible": True}, running="1.3.1")
    with pytest.raises(trt.PlanError):
        check_library_version("1.4.0", {"version_compatible": True}, running="1.3.1")
    with pytest.raises(trt.PlanError):
        check_library_version("1.2.0", {}, running="1.3.1")


def test_exclude_lean_runtime_needs_version_compatible():
    logger = CollectingLogger()
    assert plan_for(W1, B1, [trt.BuilderFlag.EXCLUDE_LEAN_RUNTIME], logger=logger,
                    hook=lambda c: None) is None
    assert "EXCLUDE_LEAN_RUNTIME needs BuilderFlag.VERSION_COMPATIBLE" in logger.errors()[-1]


def test_hardware_compatibility_levels_relax_the_compute_capability_check():
    here = {"compute_capability": "9.0", "device_name": "H100"}
    same = {"backend": "gpu", "compute_capability": "9.0", "device_name": "H200"}
    older = {"backend": "gpu", "compute_capability": "8.0", "device_name": "A100"}
    check_hardware_compatibility(same, here)  # NONE: same capability, any device name
    check_hardware_compatibility(dict(same, hardware_compatibility_level=
                                      "SAME_COMPUTE_CAPABILITY"), here)
    with pytest.raises(trt.PlanError, match="built for compute capability 8.0 .*AMPERE_PLUS"):
        check_hardware_compatibility(older, here)
    with pytest.raises(trt.PlanError, match="level SAME_COMPUTE_CAPABILITY"):
        check_hardware_compatibility(dict(older, hardware_compatibility_level=
                                          "SAME_COMPUTE_CAPABILITY"), here)
    check_hardware_compatibility(dict(older, hardware_compatibility_level="AMPERE_PLUS"), here)
    with pytest.raises(trt.PlanError, match="needs compute capability 8.0 or later; this "
                                            "device is T4 with compute capability 7.5"):
        check_hardware_compatibility(dict(older, hardware_compatibility_level="AMPERE_PLUS"),
                                     {"compute_capability": "7.5", "device_name": "T4"})


def test_hardware_compatibility_level_is_a_gpu_setting():
    config = trt.Builder(trt.Logger()).create_builder_config()
    assert config.hardware_compatibility_level == trt.HardwareCompatibilityLevel.NONE
    logger = CollectingLogger()

    def hook(c):
        c.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS

    assert plan_for(W1, B1, logger=logger, hook=hook) is None
    assert "AMPERE_PLUS applies to GPU plans" in logger.errors()[-1]
    engine = trt.engine_from_plan(plan_for(W1, B1))
    assert engine.hardware_compatibility_level == trt.HardwareCompatibilityLevel.NONE


def test_inspect_plan_reads_the_header_from_bytes_or_a_path(tmp_path):
    plan = plan_for(W1, B1, [trt.BuilderFlag.REFIT])
    path = tmp_path / "model.plan"
    path.write_bytes(plan)
    for source in (plan, path, str(path)):
        info = trt.inspect_plan(source)
        assert info.format_version == 1
        assert info.library_version == trt.__version__
        assert info.target["backend"] == "cpu"
        assert info.compatibility == {"refittable": True, "version_compatible": False,
                                      "exclude_lean_runtime": False,
                                      "hardware_compatibility_level": "NONE"}
        assert [e["name"] for e in info.io] == ["x", "y"]
        assert info.num_profiles == 1 and info.plugins == []
        assert "network" not in info.header
    with pytest.raises(trt.PlanError, match="checksum mismatch"):
        trt.inspect_plan(plan[:-1] + bytes([plan[-1] ^ 1]))


def test_set_weights_name_names_weights_through_the_plan_for_the_refitter():
    logger = CollectingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (1, 2, 4, 4))
    kernel = np.arange(2 * 2 * 9, dtype=np.float32).reshape(2, 2, 3, 3) / 30
    conv = network.add_convolution_nd(x, 2, (3, 3), kernel, np.ones(2, np.float32))
    conv.name = "conv1"
    network.mark_output(conv.get_output(0))
    assert network.set_weights_name(conv.kernel, "conv1.weight")
    assert conv.kernel.name == "conv1.weight"
    # Another use of the same memory with another count, a name already taken, weights the
    # network does not use: refused.
    assert not network.set_weights_name(trt.Weights(kernel[:1]), "other")
    assert not network.set_weights_name(conv.bias, "conv1.weight")
    assert not network.set_weights_name(trt.Weights(np.ones(3, np.float32)), "unused")
    assert network.set_weights_name(conv.bias, None) and conv.bias.name is None
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.set_flag(trt.BuilderFlag.REFIT)
    engine = trt.engine_from_plan(builder.build_serialized_network(network, config))
    refitter = trt.Refitter(engine, logger)
    assert refitter.get_all_weights() == ["conv1.bias", "conv1.weight"]
    new_kernel = -kernel[:, :, ::-1].copy()
    assert refitter.set_named_weights("conv1.weight", new_kernel)
    assert refitter.refit_cuda_engine()
    assert refitter.set_named_weights("conv1.kernel", new_kernel)  # the old name: an alias
    x_value = np.random.default_rng(1).standard_normal((1, 2, 4, 4)).astype(np.float32)
    got = engine.create_execution_context().infer({"x": x_value})
    network_b = builder.create_network(0)
    xb = network_b.add_input("x", trt.float32, (1, 2, 4, 4))
    conv_b = network_b.add_convolution_nd(xb, 2, (3, 3), new_kernel, np.ones(2, np.float32))
    network_b.mark_output(conv_b.get_output(0))
    config_b = builder.create_builder_config()
    config_b.default_device_type = trt.DeviceType.CPU
    expected = trt.engine_from_plan(builder.build_serialized_network(network_b, config_b)) \
        .create_execution_context().infer({"x": x_value})
    np.testing.assert_allclose(next(iter(got.values())), next(iter(expected.values())),
                               rtol=1e-5, atol=1e-5)
