"""CUDA pre- and post-processing kernels (Lab 04): CUDA C sources in ``.cu`` files beside this module, run with
CuPy (``RawModule``), compiled with NVRTC everywhere, and checked against NumPy references.

Layers, so every machine can do something real, one module each:

- :mod:`~trtlab.kernels.reference`: the **NumPy references** (``*_ref``), the ground truth on any machine, and
  :func:`cpu_preprocess`, the OpenCV path the kernels replace.
- :mod:`~trtlab.kernels.compile`: the sources and **NVRTC compile checks** (:func:`compile_source`,
  :func:`compile_all`; no GPU needed, errors with line numbers), and CuPy's compiled modules.
- :mod:`~trtlab.kernels.launch`: the **launch decisions** (kernel, grid, block, argument values) in plain NumPy.
- :mod:`~trtlab.kernels.gpu`: the one-call **GPU wrappers** (:func:`preprocess`, :func:`letterbox`,
  :func:`softmax_topk`), which decide and launch on every call, on any CUDA stream.
- :mod:`~trtlab.kernels.plan`, :mod:`~trtlab.kernels.pipeline`: **plans** (:class:`PreprocessPlan`,
  :class:`SoftmaxTopkPlan`, :class:`FramePipeline`) that decide once, so a whole frame-to-result step can be
  captured into one CUDA graph; :mod:`~trtlab.kernels.cvcuda_ops` is the library baseline (CV-CUDA).

Streams, pointers, DLPack, the CUDA-event timer and the copy bandwidth live in :mod:`trtlab.device`, the sample
photos and frames in :mod:`trtlab.data`; both are re-exported here, as Lab 04 uses them.

The pixel-centre convention is stated once, in ``bilinear_taps.cuh``: OpenCV ``INTER_LINEAR`` /
torch ``align_corners=False, antialias=False`` (centres aligned, edges clamped).
"""

from __future__ import annotations

import importlib
from typing import Any

from trtlab.data import sample_frames, sample_photos, write_sample_photos
from trtlab.device import (as_device_array, as_stream, copy_bandwidth, cuda_timer, from_device_pointer, on_gpu,
                           require_gpu, to_torch)
from trtlab.device import address as device_pointer
from trtlab.kernels.compile import (KERNEL_DIR, SOURCES, TAPS_INCLUDE, CompileResult, KernelCompileError,
                                    clean_exercise_source, compile_all, compile_source, kernel_source, load_module)
from trtlab.kernels.gpu import letterbox, preprocess, softmax_topk
from trtlab.kernels.launch import (MAX_CLASSES, PIXELS_PER_THREAD, Launch, bilinear_taps_ref, channel_swap,
                                   exact_scale, folded_norm, launch_config, preprocess_bytes, preprocess_launch,
                                   softmax_topk_launch)
from trtlab.kernels.reference import (cpu_preprocess, letterbox_matrix, letterbox_ref, preprocess_ref,
                                      resize_bilinear_ref, softmax_topk_ref, warp_affine_ref)

__all__ = [
    "CompileResult",
    "FramePipeline",
    "GraphTimes",
    "KERNEL_DIR",
    "KernelCompileError",
    "Launch",
    "MAX_CLASSES",
    "PIXELS_PER_THREAD",
    "PreprocessPlan",
    "SOURCES",
    "SoftmaxTopkPlan",
    "TAPS_INCLUDE",
    "as_device_array",
    "as_stream",
    "bilinear_taps_ref",
    "channel_swap",
    "clean_exercise_source",
    "compile_all",
    "compile_source",
    "copy_bandwidth",
    "cpu_preprocess",
    "cuda_timer",
    "cvcuda_ops",
    "device_pointer",
    "exact_scale",
    "folded_norm",
    "from_device_pointer",
    "graph_times",
    "kernel_source",
    "launch_config",
    "letterbox",
    "letterbox_matrix",
    "letterbox_ref",
    "load_module",
    "on_gpu",
    "preprocess",
    "preprocess_bytes",
    "preprocess_launch",
    "preprocess_ref",
    "require_gpu",
    "resize_bilinear_ref",
    "sample_frames",
    "sample_photos",
    "softmax_topk",
    "softmax_topk_launch",
    "softmax_topk_ref",
    "to_torch",
    "warp_affine_ref",
    "write_sample_photos",
]

#: Names served by submodules that need CuPy or torch, imported on first use (``kernels.PreprocessPlan``).
_LAZY = {"PreprocessPlan": "plan", "SoftmaxTopkPlan": "plan", "GraphTimes": "plan", "graph_times": "plan",
         "FramePipeline": "pipeline", "cvcuda_ops": None, "plan": None, "pipeline": None}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"trtlab.kernels.{_LAZY[name] or name}")
        return module if _LAZY[name] is None else getattr(module, name)
    raise AttributeError(f"module 'trtlab.kernels' has no attribute {name!r}")
