"""IBuilderConfig and Builder settings TensorRT scripts set: each either means what it means
in TensorRT here, or is refused with the reason (never silently ignored)."""

from __future__ import annotations

import numpy as np
import pytest

import engine as trt


def config():
    return trt.Builder(trt.Logger()).create_builder_config()


def test_engine_capability_standard_only():
    c = config()
    assert c.engine_capability == trt.EngineCapability.STANDARD
    c.engine_capability = trt.EngineCapability.STANDARD
    for other in (trt.EngineCapability.SAFETY, trt.EngineCapability.DLA_STANDALONE):
        with pytest.raises(trt.UnsupportedError, match=other.name):
            c.engine_capability = other
    assert not c.can_run_on_DLA(None)


def test_runtime_platform_and_aux_streams():
    c = config()
    assert c.runtime_platform == trt.RuntimePlatform.SAME_AS_BUILD
    with pytest.raises(trt.UnsupportedError, match="WINDOWS_AMD64"):
        c.runtime_platform = trt.RuntimePlatform.WINDOWS_AMD64
    assert c.max_aux_streams == -1
    c.max_aux_streams = 0
    assert c.max_aux_streams == 0
    with pytest.raises(ValueError, match="max_aux_streams"):
        c.max_aux_streams = -2


def test_preview_features():
    c = config()
    assert c.get_preview_feature(trt.PreviewFeature.PROFILE_SHARING_0806)
    c.set_preview_feature(trt.PreviewFeature.PROFILE_SHARING_0806, True)
    with pytest.raises(trt.UnsupportedError, match="always on"):
        c.set_preview_feature(trt.PreviewFeature.PROFILE_SHARING_0806, False)
    for feature in (trt.PreviewFeature.ALIASED_PLUGIN_IO_10_03,
                    trt.PreviewFeature.RUNTIME_ACTIVATION_RESIZE_10_10):
        assert not c.get_preview_feature(feature)
        c.set_preview_feature(feature, False)
        with pytest.raises(trt.UnsupportedError, match="not implemented"):
            c.set_preview_feature(feature, True)


def test_quantization_flags():
    c = config()
    flag = trt.QuantizationFlag.CALIBRATE_BEFORE_FUSION
    assert not c.get_quantization_flag(flag)
    c.set_quantization_flag(flag)
    assert c.get_quantization_flag(flag) and c.quantization_flags == 1
    c.clear_quantization_flag(flag)
    assert not c.get_quantization_flag(flag)


def test_build_engine_with_config_registry_and_reset():
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (2, 3))
    network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
    c = builder.create_builder_config()
    c.default_device_type = trt.DeviceType.CPU
    c.progress_monitor = None
    engine = builder.build_engine_with_config(network, c)
    data = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    out = engine.create_execution_context().infer({"x": data})
    np.testing.assert_array_equal(next(iter(out.values())), np.maximum(data, 0))
    assert builder.get_plugin_registry() is trt.get_plugin_registry()
    builder.reset()
    c.set_flag(trt.BuilderFlag.STRIP_PLAN)  # without a refit flag: the build fails, None
    assert builder.build_engine_with_config(network, c) is None
