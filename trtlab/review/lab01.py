"""Review questions of Lab 01 (training): the ResNet18 stem at 32×32, the training step, honest measurement and a
safe checkpoint. Plain data: strings and numbers only, so that the text can be translated."""

from trtlab.i18n import N_

__all__ = ["NOTEBOOK", "QUESTIONS"]

NOTEBOOK = "01_train_resnet18.ipynb"

QUESTIONS = (
    {
        "kind": "number",
        "text": N_("ResNet18's ImageNet stem is a 7×7 convolution with stride 2, then a 3×3 max-pool with stride 2. "
                   "On a 32×32 input, what is the side (in pixels) of the feature map that enters `layer1`?"),
        "answer": 8,
        "unit": "pixels",
        "explanation": N_("Each stride-2 stage halves the resolution: 32 → 16 after the convolution, 16 → 8 after "
                          "the max-pool. The stem divides by 4, which leaves 56×56 at 224×224 but only 8×8 at 32×32."),
        "see": "2. A ResNet18 for 32×32 inputs",
    },
    {
        "kind": "number",
        "text": N_("The CIFAR stem (3×3, stride 1, no max-pool) lets `layer1` see all 32×32 pixels. How many times "
                   "more positions does every later layer compute than with the ImageNet stem?"),
        "answer": 16,
        "explanation": N_("The ImageNet stem leaves 8×8 = 64 positions, the CIFAR stem 32×32 = 1024: (32 / 8)² = 16 "
                          "times the positions, so about 16× the multiply-accumulates in every residual layer. That "
                          "is why the lab measured it before choosing, and trains the standard stem on a CPU."),
        "see": "2. A ResNet18 for 32×32 inputs",
    },
    {
        "kind": "choice",
        "text": N_("Why does the stem-cost measurement drop its first round and compare the two models by a ratio "
                   "measured in the same run?"),
        "choices": (N_("The first round is always the fastest"),
                    N_("PyTorch compiles the model in the first round only on a GPU"),
                    N_("The first step includes one-time work (memory allocation, thread pools), and the CPU may be "
                       "shared, so only ratios from one run are comparable"),
                    N_("To make the numbers look better")),
        "answer": "c",
        "explanation": N_("A warm-up round absorbs one-time costs; alternating the models in the same rounds makes a "
                          "change in load hit both alike. Absolute times on a shared machine vary from run to run; a "
                          "ratio within one run is what can be trusted."),
        "see": "3. What does the stem cost? FLOPs, speed, and the time budget",
    },
    {
        "kind": "choice",
        "text": N_("Why does `train_step` call `optimizer.zero_grad()` before the backward pass?"),
        "choices": (N_("It resets the learning rate schedule"),
                    N_("It frees the model's weights"),
                    N_("PyTorch accumulates gradients into `.grad`: without it each step adds the previous step's "
                       "gradients"),
                    N_("It is only needed on a GPU")),
        "answer": "c",
        "explanation": N_("`loss.backward()` adds to `.grad` rather than overwriting it (useful for gradient "
                          "accumulation). A training step therefore clears the gradients left by the previous step "
                          "first, then runs forward, loss, backward and `optimizer.step()`."),
        "see": "4. The training step",
    },
    {
        "kind": "number",
        "text": N_("The course recipe trains for 1000 steps with batch 128. How many training images does it process "
                   "in total?"),
        "answer": 128000,
        "unit": "images",
        "explanation": N_("Steps × batch size = 1000 × 128 = 128,000 images (about 5.3 passes over the training "
                          "set). The training time follows from the measured throughput: images ÷ (images per "
                          "second)."),
        "see": "5. Train",
    },
    {
        "kind": "choice",
        "text": N_("Inputs are normalised as `x / 255`, so a dark image stays dark for the network. Why does that "
                   "matter later, for INT8?"),
        "choices": (N_("Activation ranges then depend on the illumination, so a calibration set must cover all "
                       "brightness levels"),
                    N_("It makes INT8 impossible"),
                    N_("It has no effect: INT8 normalises every image"),
                    N_("Dark images are skipped by TensorRT")),
        "answer": "a",
        "explanation": N_("With `x / 255` the brightness stays in the input scale, and early activations scale with "
                          "it. INT8 scales are fixed by the ranges seen in calibration: calibrate on dark images "
                          "only and bright ones clip (Lab 03 measures exactly that)."),
        "see": "1. The data",
    },
    {
        "kind": "choice",
        "text": N_("Why does the course report accuracy on a test split that was used neither for training nor for "
                   "choosing the recipe?"),
        "choices": (N_("The test split is larger"),
                    N_("The validation split has no labels"),
                    N_("Any data used to make a choice makes the score on it optimistic; an untouched split "
                       "estimates accuracy on new data"),
                    N_("PyTorch requires three splits")),
        "answer": "c",
        "explanation": N_("The validation split guided choices such as the step count, so its score is biased "
                          "upwards. Only a split never used for any decision estimates how the model does on unseen "
                          "images."),
        "see": "6. Evaluate on the test set",
    },
    {
        "kind": "choice",
        "text": N_("Why is the checkpoint loaded with `torch.load(..., weights_only=True)`?"),
        "choices": (N_("It loads faster because it skips the metadata"),
                    N_("It converts the weights to fp16"),
                    N_("It refuses to unpickle arbitrary Python objects, so a checkpoint cannot run code when loaded"),
                    N_("It is required to load on a CPU")),
        "answer": "c",
        "explanation": N_("A plain pickle can execute code while loading. `weights_only=True` accepts only tensors "
                          "and plain containers, which is all a `state_dict` needs; the architecture, classes and "
                          "normalisation travel in a JSON next to it, with the weights' sha256."),
        "see": "7. Save the checkpoint",
    },
)
