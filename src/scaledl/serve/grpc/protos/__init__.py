"""The Open Inference Protocol's gRPC messages: vendored .proto files and their generated code.

`grpc_predict_v2.proto` is KServe's V2 protocol definition (Apache-2.0, unchanged);
`triton_extras.proto` declares the Triton calls tritonclient also makes (ModelConfig,
RepositoryIndex). The `*_pb2*` files are generated: edit the .proto, then `make proto`.
"""
