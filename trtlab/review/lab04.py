"""Review questions of Lab 04 (CUDA kernels): the pixel-centre convention, launch configurations, streams, the
roofline and what plans and CUDA graphs save. Plain data: strings and numbers only, so that the text can be
translated."""

from trtlab.i18n import N_

__all__ = ["NOTEBOOK", "QUESTIONS"]

NOTEBOOK = "04_cuda_kernels.ipynb"

QUESTIONS = (
    {
        "kind": "number",
        "text": N_("Resizing a row of width 1000 to width 250 with centres aligned (OpenCV `INTER_LINEAR`): at which "
                   "input coordinate does output pixel 10 sample?"),
        "answer": 41.5,
        "tolerance": 0.001,
        "explanation": N_("src(d) = (d + 0.5)·s − 0.5 with s = W / w = 1000 / 250 = 4: (10.5)·4 − 0.5 = 41.5, so it "
                          "blends input pixels 41 and 42 with weights 0.5 each."),
        "see": "2. State the convention: where does an output pixel sample its input?",
    },
    {
        "kind": "number",
        "text": N_('For a 2× downscale, by how many input pixels does the "corner" convention src = d·s shift the '
                   "image relative to the centre-aligned one?"),
        "answer": 0.5,
        "tolerance": 0.001,
        "unit": "pixels",
        "explanation": N_("Centre-aligned: (d + 0.5)·2 − 0.5 = 2d + 0.5; corner: 2d. Every sample moves by half an "
                          "input pixel — tens of grey levels wherever there is an edge, and nothing crashes: only a "
                          "check against a stated reference finds it."),
        "see": "2. State the convention: where does an output pixel sample its input?",
    },
    {
        "kind": "number",
        "text": N_("Blocks of (32, 8) threads, 2 pixels per thread along x, a batch of 4 outputs of 224×224. How "
                   "many blocks does the smallest grid that writes every pixel have in total (x · y · z)?"),
        "answer": 448,
        "unit": "blocks",
        "explanation": N_("A block covers 32 × 2 = 64 columns and 8 rows: x = ⌈224 / 64⌉ = 4, y = ⌈224 / 8⌉ = 28, z "
                          "= 4 images, so 4 × 28 × 4 = 448 blocks. Round up, or the right and bottom edges go "
                          "unwritten (the kernel skips threads past the edge)."),
        "see": "Exercise 2 — the launch configuration",
    },
    {
        "kind": "choice",
        "text": N_("Why must the pre-processing kernel run on the same CUDA stream as the engine that consumes its "
                   "output?"),
        "choices": (N_("Work on one stream runs in order: on another stream the kernel could read its input before "
                       "the upload lands, or the engine could read the output before the kernel finishes"),
                    N_("Each stream has its own memory"),
                    N_("Kernels on other streams run on the CPU"),
                    N_("It is only a matter of speed")),
        "answer": "a",
        "explanation": N_("A stream is a queue: operations on it run in order, operations on different streams do "
                          "not wait for each other unless you make them (events). Launching on the consumer's stream "
                          "— TensorRT's `execute_async_v3(stream)` or torch's current stream — is the simple way to "
                          "be correct."),
        "see": "7. Streams and zero-copy",
    },
    {
        "kind": "number",
        "text": N_("A 2× downscale of one 1080×1920 BGR uint8 frame into a planar fp16 3×540×960 tensor must read "
                   "every input byte. How many bytes does it move (read + written)?"),
        "answer": 9331200,
        "unit": "bytes",
        "explanation": N_("Input 1080 × 1920 × 3 × 1 byte = 6,220,800; output 3 × 540 × 960 × 2 bytes = 3,110,400; "
                          "together 9,331,200 bytes. Divided by the kernel's time that is its achieved bandwidth, "
                          "compared with the measured copy bandwidth for the roofline fraction."),
        "see": "9. Benchmarks and the roofline",
    },
    {
        "kind": "choice",
        "text": N_("What is the ceiling the roofline section compares the kernel with?"),
        "choices": (N_("The GPU's peak FLOP/s"),
                    N_("The device's copy bandwidth, measured in the same run with a device-to-device copy"),
                    N_("The datasheet's memory bandwidth"),
                    N_("OpenCV's time on the CPU")),
        "answer": "b",
        "explanation": N_("The kernel does a few flops per byte, so it is memory-bound: the honest ceiling is how "
                          "fast this device copies memory, measured now (bytes read + written ÷ time). Achieved "
                          "bandwidth ÷ that ceiling is the roofline fraction."),
        "see": "9. Benchmarks and the roofline",
    },
    {
        "kind": "choice",
        "text": N_("A pre-processing plan captured into a CUDA graph: what does replaying the graph save?"),
        "choices": (N_("The host's time to issue each call — argument checks, allocation, packing and launch — not "
                       "the kernel's own GPU time"),
                    N_("Half the kernel's GPU time"),
                    N_("The upload of the frames"),
                    N_("Nothing: graphs are for training only")),
        "answer": "a",
        "explanation": N_("At 1080p → 224 the kernel runs for tens of microseconds and a Python call costs about as "
                          "much on the host. A plan decides buffers, kernel and arguments once, so it can be "
                          "captured; the replay issues everything without Python, leaving only the GPU time."),
        "see": "10. Launch cost: plans and one CUDA graph",
    },
    {
        "kind": "choice",
        "text": N_("Why can ImageNet's per-channel normalisation not be folded exactly into the first convolution's "
                   "weights?"),
        "choices": (N_("That convolution zero-pads its normalised input, i.e. pads with the mean; after folding it "
                       "would pad raw pixels with black, so the borders change"),
                    N_("Convolutions cannot have a bias"),
                    N_("The mean and std are not known at build time"),
                    N_("It would change the output's shape")),
        "answer": "a",
        "explanation": N_("Folding (x/255 − mean)/std into the weights is exact away from the borders only: zero "
                          "padding of a normalised input is padding with the mean colour, zero padding of raw pixels "
                          "is black. So with a library's scalar scale and offset, the per-channel affine goes into "
                          "the engine as its first layer instead."),
        "see": "11. Or call a library? CV-CUDA",
    },
)
