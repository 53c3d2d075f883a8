"""Run by test_tritonclient.py in a process of its own: unmodified ``tritonclient.grpc``
against our server. (tritonclient registers Triton's own descriptors for the same
``inference.*`` names, which cannot share a process with our stubs.) Prints one JSON object
of what each call returned; the test asserts on it."""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as triton


def main(url: str, plan_path: str, config: str) -> None:
    client = triton.InferenceServerClient(url)
    out: dict[str, object] = {
        "live": client.is_server_live(), "ready": client.is_server_ready(),
        "server_metadata": client.get_server_metadata(as_json=True),
        "model_ready": client.is_model_ready("add_sub"),
        "model_metadata": client.get_model_metadata("add_sub", as_json=True),
        "model_config": client.get_model_config("add_sub", as_json=True)["config"],
    }
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.full((2, 16), 0.25, np.float32)
    inputs = [triton.InferInput("INPUT0", [2, 16], "FP32"),
              triton.InferInput("INPUT1", [2, 16], "FP32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    result = client.infer("add_sub", inputs, outputs=[triton.InferRequestedOutput("OUTPUT1"),
                                                      triton.InferRequestedOutput("OUTPUT0")])
    out["infer"] = {"OUTPUT0": result.as_numpy("OUTPUT0").tolist(),
                    "OUTPUT1": result.as_numpy("OUTPUT1").tolist()}
    with open(plan_path, "rb") as f:
        plan = f.read()
    client.load_model("uploaded", config=config, files={"file:1/model.plan": plan})
    out["uploaded_ready"] = client.is_model_ready("uploaded")
    x = triton.InferInput("INPUT0", [1, 4], "INT32")
    x.set_data_from_numpy(np.array([[7, -8, 9, 10]], np.int32))
    out["uploaded_infer"] = client.infer("uploaded", [x]).as_numpy("OUTPUT0").tolist()
    out["index"] = client.get_model_repository_index(as_json=True).get("models", [])
    out["statistics"] = client.get_inference_statistics("uploaded", as_json=True)
    client.unload_model("uploaded")
    out["uploaded_ready_after_unload"] = client.is_model_ready("uploaded")
    try:
        client.get_model_metadata("no_such_model")
    except triton.InferenceServerException as error:
        out["error"] = {"status": error.status(), "message": error.message()}
    client.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
