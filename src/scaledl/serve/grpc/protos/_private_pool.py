"""The descriptor pool of scaledl's generated gRPC messages (see scripts/gen_grpc_stubs.py).

Private so that the same `inference.*` names may also live in protobuf's default pool, where
tritonclient, KServe and MLServer put theirs, within one process.
"""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
