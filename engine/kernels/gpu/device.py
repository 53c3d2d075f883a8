"""The CUDA device a GPU plan is built for, and the check that a plan fits this one.

A GPU plan records the compute capability and the name of the device it was built on
(``describe_device``); the runtime refuses a plan built for another compute capability
(``check_plan_target``), as TensorRT refuses an engine built for another GPU architecture.
"""

from __future__ import annotations

from typing import Any

import cupy

from engine.errors import PlanError


def _properties(device_id: int) -> dict[str, Any]:
    return dict(cupy.cuda.runtime.getDeviceProperties(device_id))


def describe_device(device_id: int | None = None) -> dict[str, Any]:
    """What a GPU plan records as its target: compute capability ("9.0"), device name,
    memory in bytes, and the CUDA runtime version (the current device unless ``device_id``)."""
    device = cupy.cuda.Device(device_id)
    props = _properties(device.id)
    name = props["name"]
    return {
        "compute_capability": f"{props['major']}.{props['minor']}",
        "device_name": name.decode() if isinstance(name, bytes) else str(name),
        "total_memory": int(props["totalGlobalMem"]),
        "cuda_runtime": int(cupy.cuda.runtime.runtimeGetVersion()),
    }


def check_plan_target(target: dict[str, Any]) -> None:
    """Refuse (``PlanError``) a GPU plan whose compute capability is not the current
    device's; a different device name of the same capability is accepted."""
    here = describe_device()
    built = target.get("compute_capability")
    if built != here["compute_capability"]:
        raise PlanError(f"plan was built for compute capability {built} "
                        f"({target.get('device_name')}); this device is "
                        f"{here['device_name']} with compute capability "
                        f"{here['compute_capability']}: rebuild the plan on this device")
