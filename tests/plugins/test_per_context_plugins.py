"""Each execution context runs its own plugin instance (``attach_to_context``), so contexts of
one engine run a stateful plugin at the same time without sharing its state."""

import threading
import time

import numpy as np

import engine as trt
from tests.plugins.test_plugin_api import ClassCreator, ScaleAddPlugin
from tests.support import build_engine


class StatefulPlugin(ScaleAddPlugin):
    """Keeps the shape seen by ``on_shape_change`` and refuses to be entered twice at once."""

    attached: list = []  # noqa: RUF012 - shared by every instance on purpose
    overlaps: list = []  # noqa: RUF012

    def __init__(self, alpha, calls=None):
        super().__init__(alpha, calls)
        self.busy = False
        self.shape = None

    def clone(self):
        return StatefulPlugin(self.alpha)

    def attach_to_context(self, resource_context):
        plugin = self.clone()
        StatefulPlugin.attached.append((self, plugin, resource_context))
        return plugin

    def on_shape_change(self, inputs, outputs):
        self.shape = tuple(inputs[0].dims)

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        if self.busy:
            StatefulPlugin.overlaps.append(self)
        self.busy = True
        time.sleep(0.01)  # long enough for the other context's run to arrive
        assert self.shape == tuple(inputs[0].shape)
        outputs[0][...] = self.alpha * inputs[0] + inputs[1]
        self.busy = False


def test_two_contexts_run_their_own_plugin_clones_concurrently():
    creator = ClassCreator(StatefulPlugin)
    assert trt.get_plugin_registry().register_creator(creator, "test")
    try:
        StatefulPlugin.attached.clear()
        StatefulPlugin.overlaps.clear()
        x = np.ones((2, 3), np.float32)

        def define(net, t):
            plugin = StatefulPlugin(2.0)
            plugin.plugin_name = "StatefulPlugin"
            return [net.add_plugin_v3([t["x"], t["y"]], [], plugin).get_output(0)]

        engine = build_engine(define, {"x": x, "y": x}, dynamic={"x": (-1, 3), "y": (-1, 3)},
                              config_hook=lambda c: None)
        contexts = [engine.create_execution_context() for _ in range(2)]
        rng = np.random.default_rng(3)
        feeds = [{"x": rng.standard_normal((2, 3)).astype(np.float32),
                  "y": rng.standard_normal((2, 3)).astype(np.float32)} for _ in contexts]
        results: dict[int, list] = {0: [], 1: []}
        barrier = threading.Barrier(2)

        def work(index):
            barrier.wait()
            for _ in range(5):
                results[index].append(contexts[index].infer(feeds[index])["out0"])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for index, feed in enumerate(feeds):
            for out in results[index]:
                np.testing.assert_allclose(out, 2.0 * feed["x"] + feed["y"], rtol=1e-6)
        assert StatefulPlugin.overlaps == []
        clones = {id(clone) for _, clone, _ in StatefulPlugin.attached}
        assert len(StatefulPlugin.attached) == 2 and len(clones) == 2
        assert all(isinstance(r, trt.IPluginResourceContext)
                   for _, _, r in StatefulPlugin.attached)
        contexts[0].infer(feeds[0])  # a context keeps its instance
        assert len(StatefulPlugin.attached) == 2
    finally:
        trt.get_plugin_registry().deregister_creator(creator)
