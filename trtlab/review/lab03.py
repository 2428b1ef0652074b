"""Review questions of Lab 03 (engines): strong typing, Q/DQ and calibration, profiles, portability, the inference
loop and what a CUDA graph saves. Plain data: strings and numbers only, so that the text can be translated."""

from trtlab.i18n import N_

__all__ = ["NOTEBOOK", "QUESTIONS"]

NOTEBOOK = "03_build_engine.ipynb"

QUESTIONS = (
    {
        "kind": "choice",
        "text": N_("In TensorRT 11 every network is strongly typed. What does that mean for how you get an FP16 or "
                   "INT8 engine?"),
        "choices": (N_("You set `BuilderFlag.FP16` / `INT8` and TensorRT picks precisions per layer"),
                    N_("Strong typing only affects the input and output tensors"),
                    N_("You must build one engine per layer precision"),
                    N_("The precision is decided in the model before the build — FP16 by ModelOpt AutoCast, INT8 by "
                       "Q/DQ nodes — and TensorRT follows the tensors' types")),
        "answer": "d",
        "explanation": N_("A strongly typed network takes every tensor's type from the graph and its type rules, so "
                          "the engine computes what the ONNX file says, the same way on every build. 11.0 removed "
                          "the weak-typing flags (`BuilderFlag.FP16/INT8`, deprecated in 10.12); on 10.x you ask for "
                          "the same behaviour with the `STRONGLY_TYPED` creation flag, which 11 accepts and ignores."),
        "see": "2. Build an engine with the raw API",
    },
    {
        "kind": "choice",
        "text": N_("What does a QuantizeLinear → DequantizeLinear (Q/DQ) pair in the ONNX graph tell TensorRT?"),
        "choices": (N_("Where the model may be computed in INT8 and with which scale: Q maps a float to INT8 (x / "
                       "scale, rounded, clamped to [-128, 127]), DQ maps it back; TensorRT fuses the pair into INT8 "
                       "kernels"),
                    N_("To quantize the weights file on disk only"),
                    N_("To run that layer on the CPU"),
                    N_("Nothing: TensorRT removes Q/DQ nodes")),
        "answer": "a",
        "explanation": N_("Explicit quantization puts the scales in the graph. TensorRT needs them symmetric (zero "
                          "point 0), per-channel for weights and per-tensor for activations, and fuses Q/DQ with the "
                          "surrounding convolutions so they run in INT8. This is the only INT8 route in 11.x; 10.x "
                          "also had calibrators (`IInt8EntropyCalibrator2`, deprecated in 10.1, removed in 11.0)."),
        "see": "4. FP16 and INT8, the TensorRT 11 way",
    },
    {
        "kind": "choice",
        "text": N_("The INT8 scales came from calibration images that were all dark. What happens to bright images?"),
        "choices": (N_("Their activations exceed the calibrated ranges and clip, so accuracy drops on them"),
                    N_("Nothing: INT8 scales do not depend on the data"),
                    N_("TensorRT recalibrates at run time"),
                    N_("They run in FP32 automatically")),
        "answer": "a",
        "explanation": N_("A scale is fixed by the largest values seen during calibration; anything larger clips to "
                          "±127 × scale. Early activations grow with the illumination, so dark-only calibration "
                          "clips bright images — the lab measured a drop of at least 5 top-1 points on the brightest "
                          "bin. Calibration data must cover what the deployment will see."),
        "see": "What does a bad calibration set cost? The calibration-coverage experiment",
    },
    {
        "kind": "choice",
        "text": N_('Why is "the first n images" of a camera log sorted by brightness a bad calibration set?'),
        "choices": (N_("It is too small"),
                    N_("It contains duplicates"),
                    N_("Calibration must use the test set"),
                    N_("It covers only the darkest images, not the distribution the model will see; sample across "
                       "brightness levels and classes")),
        "answer": "d",
        "explanation": N_("Calibration needs a sample that represents deployment: every brightness level and every "
                          "class. The first n of a sorted log are a slice of one corner of it; stratified sampling "
                          "(by class and brightness quartile) is the exercise's fix."),
        "see": "Exercise 2 — choose a calibration set",
    },
    {
        "kind": "choice",
        "text": N_("Entropy calibration lost points on the brightest images where max calibration did not. Why?"),
        "choices": (N_("Entropy calibration uses fewer images"),
                    N_("Entropy calibration is only for FP16"),
                    N_("Max calibration is always more accurate"),
                    N_("Entropy calibration clips rare large activations on purpose, for a finer grid on common "
                       "values — and here the large values are the bright images, not noise")),
        "answer": "d",
        "explanation": N_("Entropy calibration picks the range that loses the least information, which deliberately "
                          "clips outliers. That pays off when large values are noise and hurts when they are a "
                          "quarter of the data. The right method depends on what the tail of your data means."),
        "see": "Are they still correct? The accuracy table",
    },
    {
        "kind": "number",
        "text": N_("With the profile (min, opt, max) = (1, 8, 32) for the batch, which batch size are the kernels "
                   "tuned for?"),
        "answer": 8,
        "explanation": N_("`profile.set_shape(name, min, opt, max)`: TensorRT times its kernels at opt (8) and makes "
                          "sure every shape from min (1) to max (32) runs. Choose opt as the batch you expect most."),
        "see": "2. Build an engine with the raw API",
    },
    {
        "kind": "choice",
        "text": N_("A plan built with `BuilderFlag.VERSION_COMPATIBLE` on TensorRT 10.x: where can it run?"),
        "choices": (N_("Only on the exact TensorRT version that built it"),
                    N_("On any TensorRT version, older or newer"),
                    N_("On later 10.x runtimes and on an 11.x runtime — never on an older runtime"),
                    N_("On any GPU, whatever its architecture")),
        "answer": "c",
        "explanation": N_("By default a plan runs only with the TensorRT version that built it and on the GPU "
                          "architecture it was built for. Version compatibility (since 8.6) extends it to later "
                          "runtimes: a 10.x version-compatible plan also loads on 11.x, never the reverse (support "
                          "matrix). The GPU question is separate: that is hardware compatibility."),
        "see": "Why the sidecar: a plan is executable code",
    },
    {
        "kind": "choice",
        "text": N_("What does `config.hardware_compatibility_level = HardwareCompatibilityLevel.AMPERE_PLUS` change?"),
        "choices": (N_("The plan runs with any TensorRT version"),
                    N_("The plan runs on CPUs"),
                    N_("The plan runs on Ampere and newer GPUs, not only on the architecture it was built on, "
                       "usually at some cost in speed"),
                    N_("It enables FP16 on Ampere")),
        "answer": "c",
        "explanation": N_("Without it a plan holds kernels for one GPU architecture. `AMPERE_PLUS` (since 8.6) "
                          "restricts the build to kernels that run on Ampere and newer; `SAME_COMPUTE_CAPABILITY` "
                          "(added during 10.x, kept in 11) to GPUs of the same compute capability. Versions are a "
                          "separate flag."),
        "see": "Why the sidecar: a plan is executable code",
    },
    {
        "kind": "number",
        "text": N_("An fp16 input tensor of shape (32, 3, 32, 32): how many bytes does its device buffer need?"),
        "answer": 196608,
        "unit": "bytes",
        "explanation": N_("32 × 3 × 32 × 32 = 98,304 elements × 2 bytes (fp16) = 196,608 bytes. The loop allocates "
                          "each output from the shape the context reports after `set_input_shape`, times the dtype's "
                          "size."),
        "see": "5. Run the engine: the inference loop",
    },
    {
        "kind": "choice",
        "text": N_("What does replaying the inference as a CUDA graph save?"),
        "choices": (N_("GPU memory: the graph frees the activations"),
                    N_("The host's cost of launching every kernel one by one: the whole sequence is launched at "
                       "once; the kernels' GPU time is unchanged"),
                    N_("Accuracy: the graph fixes rounding"),
                    N_("Nothing on the GPU; it only shortens the build")),
        "answer": "b",
        "explanation": N_("A graph records the kernels `execute_async_v3` enqueues (captured on a non-default "
                          "stream, after one normal run) and replays them with one launch, so per-kernel launch "
                          "overhead disappears — largest at small batches. It must be recaptured when a shape or an "
                          "address changes. trtexec 11 replays a graph by default (`--noCudaGraph` turns it off); "
                          "trtexec 10 needed `--useCudaGraph`."),
        "see": "6. Benchmark: trtexec-style, ratios from one run",
    },
)
