"""Review questions of Lab 02 (export): the dynamo exporter's properties, parity, and whether TensorRT accepts the
file. Plain data: strings and numbers only, so that the text can be translated."""

from trtlab.i18n import N_

__all__ = ["NOTEBOOK", "QUESTIONS"]

NOTEBOOK = "02_export_onnx.ipynb"

QUESTIONS = (
    {
        "kind": "choice",
        "text": N_("With the dynamo exporter, why is the example input a batch of 2 rather than 1?"),
        "choices": (N_("A batch of 1 cannot be exported to ONNX"),
                    N_("`torch.export` treats a dimension of size 1 as a constant, so the batch would be frozen"),
                    N_("Batch 2 makes the exported weights smaller"),
                    N_("TensorRT needs an even batch")),
        "answer": "b",
        "explanation": N_("`torch.export` specialises size-1 dimensions to constants, even when `dynamic_shapes` "
                          'marks them dynamic. With an example batch of 2 and `dynamic_shapes=({0: Dim("batch")},)` '
                          "the batch dimension stays symbolic in the ONNX file."),
        "see": "2. Export",
    },
    {
        "kind": "choice",
        "text": N_("A model is exported without `dynamic_shapes` from an example batch of 2. What does ONNX Runtime "
                   "do with a batch of 4?"),
        "choices": (N_("Runs it: ONNX batches are always dynamic"),
                    N_("Runs it as two batches of 2"),
                    N_("Refuses it: the batch is fixed at 2 in the file"),
                    N_("Pads it to 8")),
        "answer": "c",
        "explanation": N_("Without a dynamic dimension the file records the example's shape, so every runtime (and "
                          "every engine built from it) accepts exactly a batch of 2. The lab shows the refusal "
                          "(`InputMismatch`) on a tiny model."),
        "see": "7. Classic pitfalls — what old blog posts say, and what is true today",
    },
    {
        "kind": "number",
        "text": N_("What is the lowest ONNX opset the dynamo exporter produces?"),
        "answer": 18,
        "explanation": N_("The dynamo exporter emits opset 18 or newer (asking for less silently stays at 18); "
                          "TensorRT 10 and 11 parse it. Old tutorials' `opset_version=11` belongs to the deprecated "
                          "TorchScript exporter."),
        "see": "2. Export",
    },
    {
        "kind": "choice",
        "text": N_("Why does the exported ResNet18 contain no `BatchNormalization` node?"),
        "choices": (N_("ONNX has no BatchNormalization operator"),
                    N_("TensorRT removed it during export"),
                    N_("BatchNorm was dropped from the model by mistake"),
                    N_("In eval mode the exporter folds each BatchNorm into the preceding convolution's weights and "
                       "bias")),
        "answer": "d",
        "explanation": N_("In eval mode BatchNorm is a fixed per-channel affine map, so it can be merged into the "
                          "convolution before it. That is also why `model.eval()` must come first: in train mode "
                          "BatchNorm uses batch statistics and the reference computes something else."),
        "see": "3. Validate and inspect",
    },
    {
        "kind": "choice",
        "text": N_("ONNX Runtime vs PyTorch in fp32 on the same inputs: which result is expected?"),
        "choices": (N_("bit-identical logits"),
                    N_("max |Δlogit| around 0.1, a few flipped predictions"),
                    N_("identical top-1 but no bound on the logits"),
                    N_("max |Δlogit| around 1e-6 to 1e-5 and 100 % top-1 agreement")),
        "answer": "d",
        "explanation": N_("fp32 kernels differ only in summation order, so logits agree to about 1e-6–1e-5; the lab "
                          "requires ≤ 1e-4 and 100 % top-1 agreement. A larger difference points at a real export "
                          "problem (train mode, wrong normalisation, a mis-translated op), not at rounding."),
        "see": "4. Parity: does ONNX Runtime compute what PyTorch computes?",
    },
    {
        "kind": "choice",
        "text": N_("What does an optimization profile give TensorRT for a network with a dynamic batch?"),
        "choices": (N_("The min / opt / max shape of every dynamic dimension, so it can choose kernels (tuned for "
                       "opt) and size memory for the whole range"),
                    N_("The precision of each layer"),
                    N_("The number of CUDA streams to use"),
                    N_("Nothing: TensorRT infers the range from the ONNX file")),
        "answer": "a",
        "explanation": N_("A `-1` dimension leaves TensorRT without the sizes it must plan for, so the build fails "
                          '("no optimization profile has been defined"). `profile.set_shape(name, min, opt, max)` '
                          "fixes the range: kernels are tuned for opt, and any shape from min to max then runs. This "
                          "is the same in TensorRT 10 and 11."),
        "see": "5. Will TensorRT accept this?",
    },
    {
        "kind": "number",
        "text": N_("The lab's profile for the batch is (min, opt, max) = (1, 8, 32). How many different batch sizes "
                   "can the engine run?"),
        "answer": 32,
        "explanation": N_("Every batch from min to max inclusive: 1, 2, …, 32, that is 32 sizes; a batch of 33 is "
                          "refused at `set_input_shape`. Opt (8) is the size the kernels are tuned for, not the only "
                          "one that runs."),
        "see": "5. Will TensorRT accept this?",
    },
    {
        "kind": "choice",
        "text": N_("At which stage does an ONNX op without a TensorRT importer (the lab's `FancyActivation`) fail?"),
        "choices": (N_("At export"),
                    N_("At parse time, reported node by node"),
                    N_("At the build, after tactic timing"),
                    N_("Only when the engine runs")),
        "answer": "b",
        "explanation": N_("The ONNX parser maps each node to TensorRT layers; a node it has no importer for (and no "
                          "plugin registered under its name) makes `parse` return False, and each error names the "
                          "node and its operator. Lab 05 turns such an op into a plugin."),
        "see": "5. Will TensorRT accept this?",
    },
    {
        "kind": "choice",
        "text": N_("Why export with `external_data=False`?"),
        "choices": (N_("So the weights stay inside the one .onnx file instead of a separate .data file that is easy "
                       "to lose"),
                    N_("It makes the export faster"),
                    N_("It is required by ONNX Runtime"),
                    N_("It removes unused weights")),
        "answer": "a",
        "explanation": N_("With external data the graph refers to a weights file next to it; copy only the .onnx and "
                          "every consumer fails to load it. A small model fits in one file (the 2 GB protobuf limit "
                          "is what forces external data for big ones)."),
        "see": "2. Export",
    },
)
