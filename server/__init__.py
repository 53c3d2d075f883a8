"""An inference server for plans and ONNX models, speaking KServe v2 / Triton's protocol.

``server.core`` holds all behaviour (repository, models, batching, codecs, statistics);
``server.rest`` is the HTTP face. Start it with ``python -m server --model-repository DIR``.
"""
