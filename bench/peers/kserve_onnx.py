"""KServe's Python model server with a custom `kserve.Model` around ONNX Runtime (V2 REST + gRPC).

    python kserve_onnx.py --model NAME=PATH [--model …] --threads 2 --http_port P --grpc_port G

KServe has no ONNX runtime in its Python server (ONNX goes to Triton in a cluster); a custom
Model is its documented way to serve one. `--http_port`, `--grpc_port`, `--workers` … are
KServe's own flags.
"""

from __future__ import annotations

import argparse

import kserve
from kserve import InferOutput, InferRequest, InferResponse, model_server
from kserve.utils.utils import generate_uuid
from ort_session import make_session


class OnnxModel(kserve.Model):
    def __init__(self, name: str, path: str, threads: int) -> None:
        super().__init__(name)
        self.path, self.threads = path, threads
        self.load()

    def load(self) -> bool:
        self.session = make_session(self.path, self.threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.ready = True
        return self.ready

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        infer_outputs = []
        for name, y in zip(self.output_names, self.session.run(None, {self.input_name: x})):
            out = InferOutput(name=name, shape=list(y.shape), datatype="FP32")
            # as kserve.utils.get_predict_response does: raw bytes when the client asked
            out.set_data_from_numpy(y, binary_data=payload.use_binary_outputs)
            infer_outputs.append(out)
        return InferResponse(
            model_name=self.name,
            response_id=payload.id or generate_uuid(),  # as KServe's own helpers do
            infer_outputs=infer_outputs,
            use_binary_outputs=payload.use_binary_outputs,
        )


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH")
    parser.add_argument("--threads", type=int, default=1)
    args, _ = parser.parse_known_args()
    models = []
    for item in args.model:
        name, _, path = item.partition("=")
        models.append(OnnxModel(name, path, args.threads))
    kserve.ModelServer().start(models)


if __name__ == "__main__":
    main()
