"""Triton Python-backend model: runs an ONNX file with trtlab.runtime.OnnxRuntimeRunner (copied as ``model.py``).

Dynamic batching hands execute() a *list* of requests; this model concatenates them into one batch, runs it once
and splits the result back, one response per request (that is where batching saves work).

Runs inside the Python-backend stub (tl.serve.stub_python_bin): NumPy 1.26 and this environment's packages
(onnxruntime, trtlab); ``triton_python_backend_utils`` is the module the stub provides.
"""
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


__all__ = ["TritonPythonModel"]


class TritonPythonModel:
    def initialize(self, args):
        import onnxruntime as ort
        from trtlab.runtime import OnnxRuntimeRunner

        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        here = os.path.join(args["model_repository"], args["model_version"])
        self.runner = OnnxRuntimeRunner(os.path.join(here, params.get("model_file", "model.onnx")),
                                        session_options=options)
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def execute(self, requests):
        feeds = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
        sizes = [f[self.inputs[0]].shape[0] for f in feeds]
        try:
            batch = {n: np.concatenate([f[n] for f in feeds]) for n in self.inputs}
            result = self.runner.infer(batch)
        except Exception as err:  # reported to each client, the server keeps serving
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(str(err))) for _ in requests]
        responses, start = [], 0
        for size in sizes:
            tensors = [pb_utils.Tensor(n, np.ascontiguousarray(result[n][start:start + size])) for n in self.outputs]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses

    def finalize(self):
        self.runner.close()
