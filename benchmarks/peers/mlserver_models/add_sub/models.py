"""MLServer custom runtime doing what examples/models/add_sub does:
OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, FP32 [-1, 16]."""

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class AddSub(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        a, b = inputs["INPUT0"], inputs["INPUT1"]
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output("OUTPUT0", a + b),
                     NumpyCodec.encode_output("OUTPUT1", a - b)])
