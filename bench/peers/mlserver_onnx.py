"""MLServer custom runtime: the ONNX graph in ONNX Runtime, V2 in and out (MLServer's codecs).

MLServer has no ONNX runtime of its own; its documented way is a custom `MLModel`. The model
settings carry the graph path (`parameters.uri`) and the thread count (`parameters.extra`).
"""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from ort_session import make_session


class OnnxModel(MLModel):
    async def load(self) -> bool:
        parameters = self.settings.parameters
        extra = parameters.extra or {}
        self.session = make_session(parameters.uri, int(extra.get("threads", 1)))
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        outputs = self.session.run(None, {self.input_name: x})
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output(name, y) for name, y in zip(self.output_names, outputs)
            ],
        )
