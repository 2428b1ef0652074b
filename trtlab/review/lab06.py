"""Review questions of Lab 06 (Triton): model repositories, the batch dimension in `config.pbtxt`, dynamic batching
and instances, metrics, and serving a TensorRT plan. Plain data: strings and numbers only, so that the text can be
translated."""

from trtlab.i18n import N_

__all__ = ["NOTEBOOK", "QUESTIONS"]

NOTEBOOK = "06_triton_deploy.ipynb"

QUESTIONS = (
    {
        "kind": "choice",
        "text": N_("A model takes N×3×32×32 images and its `config.pbtxt` has `max_batch_size: 64`. What are the "
                   "input's `dims`?"),
        "choices": ("[3, 32, 32]",
                    "[-1, 3, 32, 32]",
                    "[64, 3, 32, 32]",
                    "[32, 32, 3]"),
        "answer": "a",
        "explanation": N_("With `max_batch_size > 0` Triton owns the first (batch) dimension: `dims` list the shape "
                          "without it. Writing the batch into `dims` is the classic mistake — the model then expects "
                          "a 5-D input and fails to load or rejects every request."),
        "see": "2. The model repository and `config.pbtxt`",
    },
    {
        "kind": "number",
        "text": N_("A TensorRT plan's profile allows batches (min, opt, max) = (1, 8, 32). What `max_batch_size` "
                   "should its Triton config have?"),
        "answer": 32,
        "explanation": N_("Triton must never send a batch the plan cannot run, so `max_batch_size` is the largest "
                          "batch of the plan's profile: 32. The course writes it from the plan's metadata sidecar "
                          "rather than by hand."),
        "see": "7. The GPU path: Lab 03's plan in NVIDIA's container",
    },
    {
        "kind": "choice",
        "text": N_("What does dynamic batching trade?"),
        "choices": (N_("Accuracy for speed"),
                    N_("A little latency — a request may wait up to `max_queue_delay` for others — for throughput "
                       "and less work per request under concurrent load"),
                    N_("Memory for accuracy"),
                    N_("Nothing: it is faster at every load")),
        "answer": "b",
        "explanation": N_("Requests that arrive while the model is busy wait in a queue and run together as one "
                          "batch, so weights are read and per-request overheads paid once per batch. At concurrency "
                          "1 there is nothing to batch and the queue delay is pure added latency; at concurrency 32 "
                          "it pays."),
        "see": "6. Dynamic batching and instances, measured",
    },
    {
        "kind": "number",
        "text": N_("Between two metric snapshots `nv_inference_count` grew from 1000 to 1640 and "
                   "`nv_inference_exec_count` from 100 to 140. What was the average batch size?"),
        "answer": 16,
        "explanation": N_("Inferences ÷ executions over the interval: (1640 − 1000) ÷ (140 − 100) = 640 ÷ 40 = 16. "
                          "Use differences between snapshots: the counters are cumulative since the server started."),
        "see": "Exercise 3 — read the metrics",
    },
    {
        "kind": "number",
        "text": N_("32 closed-loop clients each send one image and wait for the answer before sending the next. What "
                   "is the largest batch dynamic batching can ever form?"),
        "answer": 32,
        "explanation": N_("A closed loop never has more requests in flight than clients, so no batch can exceed 32; "
                          "in practice the average stays below it, because clients refill the queue only as answers "
                          "come back."),
        "see": "6. Dynamic batching and instances, measured",
    },
    {
        "kind": "choice",
        "text": N_("Why does the model with two instances form smaller batches than the one with one instance, under "
                   "the same 32 clients?"),
        "choices": (N_("Two executions drain the queue in parallel, so each finds about half of the waiting requests"),
                    N_("Each instance has a lower max_batch_size"),
                    N_("Instances disable dynamic batching"),
                    N_("The second instance runs on the GPU")),
        "answer": "a",
        "explanation": N_("With two instances the scheduler hands the queue to whichever is free, so each batch "
                          "holds what queued during a shorter wait. More, smaller executions buy throughput only "
                          "when there are free cores (or GPU capacity) to run them side by side."),
        "see": "6. Dynamic batching and instances, measured",
    },
    {
        "kind": "choice",
        "text": N_("Why does the lab start Triton with explicit model control?"),
        "choices": (N_("Models are loaded one by one on request, so a model that fails to load does not take the "
                       "others down"),
                    N_("It makes inference faster"),
                    N_("It is required for gRPC"),
                    N_("It disables the metrics endpoint")),
        "answer": "a",
        "explanation": N_("The lab loads a model that cannot load on this build (`classifier_ort`) on purpose: "
                          "Triton answers with the reason and every other model keeps serving. Loading and unloading "
                          "on request is also how a new version is rolled out without a restart."),
        "see": "4. Start the server",
    },
    {
        "kind": "number",
        "text": N_("The ensemble takes raw uint8 pixels and normalises them inside the server, instead of receiving "
                   "float32 tensors. How many times fewer bytes does a client send?"),
        "answer": 4,
        "explanation": N_("uint8 is 1 byte per value, float32 is 4: the same H×W×3 image is 4× smaller on the wire, "
                          "and clients cannot get the normalisation wrong because the server owns it."),
        "see": "3. A repository for this machine",
    },
    {
        "kind": "choice",
        "text": N_("Which Triton backend can serve a plan that TensorRT-RTX built?"),
        "choices": (N_("`tensorrt_plan`, like any TensorRT plan"),
                    N_("The Python backend, without changes"),
                    "`onnxruntime_onnx`",
                    N_("None: Triton's `tensorrt_plan` backend runs standard TensorRT plans, built by the TensorRT "
                       "version of the container")),
        "answer": "d",
        "explanation": N_("A plan runs only with the runtime that built it: standard TensorRT plans in the container "
                          "whose TensorRT matches the plan's version. A TensorRT-RTX plan needs the TensorRT-RTX "
                          "runtime, which the `tensorrt_plan` backend is not, so the lab refuses to print a "
                          "container command for it."),
        "see": "7. The GPU path: Lab 03's plan in NVIDIA's container",
    },
)
