"""Review questions of Lab 00 (setup): compute capabilities, which runtime a machine gets, which TensorRT calls are
current. Plain data: strings and numbers only, so that the text can be translated."""

from trtlab.i18n import N_

__all__ = ["NOTEBOOK", "QUESTIONS"]

NOTEBOOK = "00_setup.ipynb"

QUESTIONS = (
    {
        "kind": "choice",
        "text": N_("Which is the first compute capability whose tensor cores accelerate FP8?"),
        "choices": ("8.0 (Ampere, A100)",
                    "8.6 (Ampere, RTX 3090)",
                    "8.9 (Ada, L4 / RTX 4090)",
                    "10.0 (Blackwell, B200)"),
        "answer": "c",
        "explanation": N_("FP8 tensor cores arrived with Ada (8.9) and Hopper (9.0); Ampere (8.0, 8.6) has FP16, "
                          "BF16, TF32 and INT8 but no FP8, and Blackwell (10.0) added FP4 on top of FP8. An FP8 "
                          "engine is only worth building on 8.9 and newer."),
        "see": "Exercise 1 — what does a compute capability buy you?",
    },
    {
        "kind": "choice",
        "text": N_("Which of these GPUs has INT8 tensor cores?"),
        "choices": ("Tesla P4 (6.1)",
                    "V100 (7.0)",
                    "Jetson AGX Xavier (7.2)",
                    N_("none of them")),
        "answer": "c",
        "explanation": N_("The Jetson Xavier's Volta (7.2) added INT8 tensor cores; the V100 (7.0) has FP16 tensor "
                          "cores only, and Pascal (6.1) has no tensor cores at all — a P4 runs INT8 with DP4A "
                          "instructions, which is a different (and not necessarily faster) path."),
        "see": "Exercise 1 — what does a compute capability buy you?",
    },
    {
        "kind": "choice",
        "text": N_("Why compare compute capabilities as tuples, `(10, 0) >= (8, 9)`, rather than as the strings "
                   '`"10.0" >= "8.9"`?'),
        "choices": (N_("Strings are slower to compare"),
                    N_("There is no difference: both give True"),
                    N_('Strings compare character by character: "10.0" >= "8.9" is False because "1" < "8"'),
                    N_("Tuples ignore the minor version")),
        "answer": "c",
        "explanation": N_('Python compares strings character by character, so "10.0" sorts before "8.9" and a '
                          "Blackwell GPU would look older than an Ada one. Tuples compare element by element: the "
                          "major version first, then the minor one, which is what a compute capability means."),
        "see": "Exercise 1 — what does a compute capability buy you?",
    },
    {
        "kind": "choice",
        "text": N_("A machine has an H100 (compute capability 9.0) and only the `tensorrt_rtx` package. Which "
                   "runtime executes Lab 03's engines there?"),
        "choices": (N_("tensorrt-rtx: it runs everywhere it builds"),
                    N_('none ("cpu"): TensorRT-RTX builds anywhere, but its support matrix does not list 9.0'),
                    N_("tensorrt: the package is found through TensorRT-RTX"),
                    N_("tensorrt-rtx, but only in FP32")),
        "answer": "b",
        "explanation": N_("Building and running are separate questions. TensorRT-RTX compiles ahead of time on any "
                          "machine, even without a GPU, but runs engines only on the GPUs its support matrix lists "
                          "(7.5, 8.6, 8.9, 12.0, 12.1) — not Hopper's 9.0. With no `tensorrt` package the lab falls "
                          "back to ONNX Runtime."),
        "see": "Exercise 2 — read the capability summary",
    },
    {
        "kind": "choice",
        "text": N_("What is the oldest GPU generation that the `tensorrt` package supports from 10.5 on (11.x "
                   "included)?"),
        "choices": ("Pascal (6.x)",
                    "Turing (7.5)",
                    "Volta (7.0)",
                    "Ampere (8.0)"),
        "answer": "b",
        "explanation": N_("TensorRT 10.0 deprecated Volta (7.0) and 10.5 removed it (10.5 release notes), and Pascal "
                          "was already unsupported in TensorRT 10; so 10.5 and later, 11.x included, need compute "
                          "capability 7.5 (Turing) or newer. Older GPUs stay on an older TensorRT."),
        "see": "Exercise 2 — read the capability summary",
    },
    {
        "kind": "choice",
        "text": N_("Which TensorRT release removed `builder.build_engine` and `config.max_workspace_size`?"),
        "choices": ("8.6",
                    "10.0",
                    "10.12",
                    "11.0"),
        "answer": "b",
        "explanation": N_("TensorRT 10.0 removed `build_engine`, `max_workspace_size`, implicit batch and the "
                          "binding-index API. Their replacements are `build_serialized_network(network, config)` and "
                          "`set_memory_pool_limit(MemoryPoolType.WORKSPACE, size)`, current in 10.x and 11.x alike."),
        "see": "Exercise 3 — which TensorRT calls are current?",
    },
    {
        "kind": "choice",
        "text": N_("`config.set_flag(trt.BuilderFlag.FP16)`: what is its status?"),
        "choices": (N_("Deprecated in 10.12, still working on 10.x, removed in 11.0"),
                    N_("Removed in 10.0, together with `build_engine`"),
                    N_("Current in 11.x: it is how FP16 engines are built"),
                    N_("Renamed in 11.0 to `BuilderFlag.HALF`")),
        "answer": "a",
        "explanation": N_("TensorRT 10.12 deprecated the weak-typing APIs (precision flags such as FP16 and INT8) "
                          "and 11.0 removed them: every network is strongly typed and the precision comes from the "
                          "model's tensor types (FP16 via ModelOpt AutoCast, INT8 via Q/DQ nodes). The flag still "
                          "works on 10.x — e.g. a Jetson on JetPack 6."),
        "see": "Exercise 3 — which TensorRT calls are current?",
    },
    {
        "kind": "text",
        "text": N_("Name the execution-context method that enqueues inference on a CUDA stream, with tensors "
                   "addressed by name, in TensorRT 10 and 11."),
        "answer": "execute_async_v3",
        "accept": ("execute_async_v3",
                   "context.execute_async_v3",
                   "execute_async_v3(stream)",
                   "context.execute_async_v3(stream)",
                   "enqueueV3",
                   "context->enqueueV3"),
        "explanation": N_("`execute_async_v3(stream)` (C++ `enqueueV3`) runs the engine on the tensors whose "
                          "addresses were set with `set_tensor_address(name, ptr)`. `execute_async_v2` and the "
                          "binding-index calls were removed in 10.0; the synchronous `execute_v2(bindings)` "
                          "survived, but it blocks."),
        "see": "Exercise 3 — which TensorRT calls are current?",
    },
)
