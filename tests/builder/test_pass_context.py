"""A fusion pass asks its ``PassContext`` whether the target has a tactic for the fused layer;
the answer counts only tactics of the tactic sources the builder config enables (a fusion
only a disabled library could run would leave the layer without a tactic)."""

from __future__ import annotations

import engine as trt
from engine.builder.passes.context import PassContext
from engine.kernels.registry import kernel, unregister
from engine.network.layer import LayerType


def test_accepts_counts_only_tactics_of_enabled_sources():
    kernel(LayerType.IDENTITY, backend="probe", name="probe.identity_cudnn",
           source="CUDNN")(lambda layer, inputs: inputs)
    try:
        builder = trt.Builder(trt.Logger())
        network = builder.create_network(0)
        layer = network.add_identity(network.add_input("x", trt.float32, (2, 3)))
        config = builder.create_builder_config()
        assert PassContext("probe", config).accepts(layer)
        assert PassContext("probe").accepts(layer)  # no config: every source
        config.set_tactic_sources(config.get_tactic_sources()
                                  & ~(1 << int(trt.TacticSource.CUDNN)))
        assert not config.tactic_source_enabled("CUDNN")
        assert config.tactic_source_enabled("CUBLAS") and config.tactic_source_enabled(None)
        assert not PassContext("probe", config).accepts(layer)
    finally:
        unregister("probe", LayerType.IDENTITY, "probe.identity_cudnn")
