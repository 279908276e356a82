"""The Open Inference Protocol over gRPC (`scaledl serve --grpc-port`).

`server` starts and stops the grpc.aio listener with the HTTP server, `servicer` answers the
`inference.GRPCInferenceService` methods through the same objects as the HTTP routes, and
`tensors` converts its messages to and from numpy. `protos` holds the vendored .proto files
and their generated code.
"""
