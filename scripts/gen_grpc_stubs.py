"""Regenerate the committed gRPC stubs of `scaledl serve` from their .proto files.

    make proto          # a throw-away venv with grpcio-tools, then this script

Installs need only grpcio + protobuf: the generated `*_pb2.py`, `*_pb2.pyi` and
`grpc_predict_v2_pb2_grpc.py` are committed. Pin GRPCIO_TOOLS in the Makefile and raise the
`grpcio`/`protobuf` floors in pyproject.toml with it: the generated code refuses older runtimes.

One edit after protoc: the messages are registered in a private descriptor pool instead of
protobuf's default one. tritonclient, KServe and MLServer define the same `inference.*`
message names in the default pool, and two definitions of one name there fail at import, so
without this a process could not hold both scaledl's server and, say, tritonclient.grpc.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PROTOS = Path("scaledl/serve/grpc/protos")
DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
PRIVATE_POOL = "_private_pool.POOL.AddSerializedFile("
POOL_IMPORT = "from scaledl.serve.grpc.protos import _private_pool\n"


def protoc(args: list[str]) -> None:
    from grpc_tools import protoc as tool

    if tool.main(["protoc", f"-I{SRC}", *args]) != 0:
        sys.exit(f"protoc failed on {args[-1]}")


def use_private_pool(path: Path) -> None:
    text = path.read_text()
    if DEFAULT_POOL not in text:
        sys.exit(f"{path}: protoc output changed ({DEFAULT_POOL!r} not found); update this script")
    marker = "# @@protoc_insertion_point(imports)\n"
    text = text.replace(DEFAULT_POOL, PRIVATE_POOL).replace(marker, marker + POOL_IMPORT)
    path.write_text(text)


def main() -> None:
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        sys.exit("grpcio-tools is not installed: run `make proto`")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name, with_service in (("grpc_predict_v2", True), ("triton_extras", False)):
            proto = str(SRC / PROTOS / f"{name}.proto")
            args = [f"--python_out={out}", f"--pyi_out={out}"]
            if with_service:
                args.append(f"--grpc_python_out={out}")
            protoc([*args, proto])
            use_private_pool(out / PROTOS / f"{name}_pb2.py")
        for generated in sorted((out / PROTOS).iterdir()):
            shutil.copyfile(generated, SRC / PROTOS / generated.name)
            print(f"wrote {PROTOS / generated.name}")


if __name__ == "__main__":
    main()
