"""PyTriton: the real tritonserver (bundled in nvidia-pytriton) serving add_sub through its
Python backend, the same computation as examples/models/add_sub:
OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, FP32 [-1, 16], max batch 8 with
Triton's dynamic batching (as our config.pbtxt has).

    python benchmarks/peers/pytriton_add_sub.py --http-port 18010 --grpc-port 18011
"""

import argparse
import logging

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


@batch
def add_sub(INPUT0: np.ndarray, INPUT1: np.ndarray) -> dict:  # noqa: N803 - PyTriton binds by name
    return {"OUTPUT0": INPUT0 + INPUT1, "OUTPUT1": INPUT0 - INPUT1}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--http-port", type=int, default=18010)
    p.add_argument("--grpc-port", type=int, default=18011)
    p.add_argument("--metrics-port", type=int, default=18012)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port,
                          metrics_port=args.metrics_port)
    with Triton(config=config) as triton:
        triton.bind(
            model_name="add_sub", infer_func=add_sub,
            inputs=[Tensor(name="INPUT0", dtype=np.float32, shape=(16,)),
                    Tensor(name="INPUT1", dtype=np.float32, shape=(16,))],
            outputs=[Tensor(name="OUTPUT0", dtype=np.float32, shape=(16,)),
                     Tensor(name="OUTPUT1", dtype=np.float32, shape=(16,))],
            config=ModelConfig(max_batch_size=8, batcher=DynamicBatcher(
                preferred_batch_size=[4, 8], max_queue_delay_microseconds=500)))
        triton.serve()


if __name__ == "__main__":
    main()
