"""Review questions of Lab 05 (a custom op): why GeM needs one node, shape functions on symbolic shapes, how the
ONNX parser finds a plugin, and quickly deployable plugins. Plain data: strings and numbers only, so that the text
can be translated."""

from trtlab.i18n import N_

__all__ = ["NOTEBOOK", "QUESTIONS"]

NOTEBOOK = "05_custom_plugin.ipynb"

QUESTIONS = (
    {
        "kind": "number",
        "text": N_("GeM with p = 3 computes x³. The largest finite fp16 value is 65504. Above which activation does "
                   "x³ overflow to infinity in fp16? (two decimals are enough)"),
        "answer": 40.32,
        "tolerance": 0.05,
        "explanation": N_("65504^(1/3) ≈ 40.3: a cube of an activation above it is inf in fp16. Four standard nodes "
                          "(Max → Pow → ReduceMean → Pow) keep `x ** p` in the tensor's precision; one custom node "
                          "with a kernel that accumulates in fp32 does not overflow."),
        "see": "The op: GeM pooling, and why it needs a plugin",
    },
    {
        "kind": "choice",
        "text": N_("The plugin's shape function receives an input of shape (N, C, H, W) where N is symbolic (a "
                   "TensorRT shape expression). What must it return?"),
        "choices": ("(int(N), C, 1, 1)",
                    N_("(C, 1, 1): the batch is implicit"),
                    "(1, C, 1, 1)",
                    N_("(N, C, 1, 1), passing N and C through without calling `int()` on them")),
        "answer": "d",
        "explanation": N_("At build time the batch is a symbol, not a number: the function may pass dimensions "
                          "through or combine them with the expression API, but `int()` of a symbolic dimension "
                          "fails. Dropping the batch dimension is the classic mistake — TensorRT 10 and 11 have "
                          "explicit batch only."),
        "see": "Step 1 — the op in PyTorch",
    },
    {
        "kind": "choice",
        "text": N_("The ONNX parser meets a node it has no importer for. How does its fallback find a plugin?"),
        "choices": (N_("It looks up the plugin registry by name = the node's op_type, plus the string attributes "
                       "`plugin_version` and `plugin_namespace`"),
                    N_("By the node's ONNX domain"),
                    N_("By the node's name"),
                    N_("It never does: unknown ops always fail")),
        "answer": "a",
        "explanation": N_("The FallbackPluginImporter asks the registry for a creator with (op_type, plugin_version, "
                          "plugin_namespace); the ONNX domain is not part of the lookup. A mismatch in any of the "
                          'three gives "Plugin not found, are the plugin name, version, and namespace correct?".'),
        "see": "Step 4 — the failure first: the TensorRT-family parser",
    },
    {
        "kind": "text",
        "text": N_("A custom node has no `plugin_version` attribute. Which version string does the parser's fallback "
                   "look up?"),
        "answer": "1",
        "accept": ("1",
                   '"1"',
                   "version 1",
                   "版本 1"),
        "explanation": N_('Without the attribute the fallback importer uses version "1" (and namespace ""). The '
                          'course\'s node sets `plugin_version="1"` and `plugin_namespace="trtlab"` explicitly, '
                          "matching the registration `trtlab::GemPool`."),
        "see": "Step 2 — export as one custom ONNX node",
    },
    {
        "kind": "choice",
        "text": N_("Which ONNX field does ONNX Runtime Extensions use, and TensorRT ignore, for the custom GemPool "
                   "node?"),
        "choices": (N_("The op_type"),
                    N_("The `p` attribute"),
                    N_("The domain `ai.onnx.contrib`"),
                    N_("The output name")),
        "answer": "c",
        "explanation": N_("onnxruntime-extensions registers its Python custom ops in the `ai.onnx.contrib` domain; "
                          "TensorRT's lookup uses op_type, plugin_version and plugin_namespace. One node can "
                          "therefore satisfy both runtimes."),
        "see": "Step 2 — export as one custom ONNX node",
    },
    {
        "kind": "number",
        "text": N_("The kernel gives one warp (32 threads) to each (n, c) plane. Blocks have 128 threads. Which "
                   "plane does thread 70 of block 3 work on?"),
        "answer": 14,
        "explanation": N_("Global thread index t = 3 × 128 + 70 = 454; plane = t // 32 = 14, lane = t % 32 = 6. The "
                          "32 lanes of a warp stride over the plane's H×W values and a warp-shuffle sum combines "
                          "them."),
        "see": "Step 5 — the TensorRT plugin",
    },
    {
        "kind": "choice",
        "text": N_("What does a `@trtp.aot_impl` implementation give you that `@trtp.impl` does not?"),
        "choices": (N_("The compiled kernel (PTX) is embedded in the engine, so the engine runs without Python — in "
                       "trtexec, C++ or Triton"),
                    N_("It runs on the CPU"),
                    N_("It needs no shape function"),
                    N_("It supports FP16 only")),
        "answer": "a",
        "explanation": N_("`@trtp.impl` (TensorRT 10.6+) calls back into Python at run time; `@trtp.aot_impl` "
                          "(10.9+) returns the kernel and its launch parameters at build time, stored in the plan. "
                          "With both defined, the network must say which to use: `PREFER_AOT_PYTHON_PLUGINS` or "
                          "`PREFER_JIT_PYTHON_PLUGINS`."),
        "see": "Step 5 — the TensorRT plugin",
    },
    {
        "kind": "choice",
        "text": N_("Which plugin interface does TensorRT 11 recommend for new plugins, in C++ and behind "
                   "`tensorrt.plugin`?"),
        "choices": ("IPluginV2DynamicExt",
                    "IPluginV2IOExt",
                    N_("IPluginV3 (with IPluginV3OneCore / Build / Runtime and IPluginCreatorV3One)"),
                    "IPlugin"),
        "answer": "c",
        "explanation": N_("IPluginV3 is the recommended interface in 10.x and 11.x; the V2 interfaces are deprecated "
                          "(the 11 docs list them as deprecated, not removed). Quickly deployable plugins generate "
                          "an IPluginV3 and its creator from decorated Python functions."),
        "see": "Appendix — the C++ `IPluginV3`",
    },
)
