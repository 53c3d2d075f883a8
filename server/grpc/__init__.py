"""The KServe v2 gRPC face of the server (``inference.GRPCInferenceService``), with the
standard health and reflection services.

Importing this package imports nothing: the generated stubs (``_generated``) are shared with
``clients`` without pulling in the server. Start it with ``server.grpc.server.GrpcServer``.
"""
