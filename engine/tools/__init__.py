"""Command-line tools beside the library, peers of TensorRT's own.

- ``pytrtexec`` (``python -m engine.tools.trtexec``): build a plan from ONNX and benchmark it,
  with trtexec's flags and report.
- ``pypolygraphy`` (``python -m engine.tools.polygraphy``): ``run`` compares this engine with
  onnxruntime on one model; ``inspect model`` lists a model's or plan's layers, tactics,
  precisions and I/O.

The tools sit above the library and use only its public API plus the plan reader.
"""
