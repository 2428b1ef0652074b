"""Triton Python-backend model (copied as ``model.py``): uint8 N×H×W×3 (RGB) → float32 N×3×H×W, (x/255 - mean)/std.

The first step of an ensemble: clients send raw pixels (4× fewer bytes than float32) and the server normalises
them exactly as training did (mean and std come from the checkpoint metadata, in config.pbtxt parameters).
Runs inside the Python-backend stub: imports only NumPy and the stub's ``triton_python_backend_utils``.
"""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


__all__ = ["TritonPythonModel"]


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.mean = np.asarray(json.loads(params["mean"]), np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(json.loads(params["std"]), np.float32).reshape(1, 3, 1, 1)
        self.input, self.output = config["input"][0]["name"], config["output"][0]["name"]

    def execute(self, requests):
        responses = []
        for request in requests:
            pixels = pb_utils.get_input_tensor_by_name(request, self.input).as_numpy()
            x = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            x = np.ascontiguousarray((x - self.mean) / self.std, dtype=np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output, x)]))
        return responses
