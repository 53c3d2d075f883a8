"""The network definition: tensors, layers, shape and type inference."""
