"""Lab 05: a custom operator end to end — GeM pooling as a PyTorch op, an ONNX custom node, an ONNX Runtime
custom op on the CPU, and a TensorRT plugin on the GPU.

**The op.** Generalized-mean (GeM) pooling, ``y[n, c] = (mean_hw max(x, eps)^p)^(1/p)``, is the pooling of
image-retrieval, landmark and re-identification CNNs (Radenović et al., TPAMI 2018): ``p = 1`` is average pooling,
``p → ∞`` max pooling, ``p = 3`` the usual choice. ONNX has no GeM operator: written with standard nodes it is
four (Max, Pow, ReduceMean, Pow), and in FP16 ``x ** 3`` overflows for activations above ~40. As one custom node it
is one kernel that accumulates in FP32.

**The contract** (what each runtime looks up):

=================  ==============================================================================
PyTorch            ``torch.ops.trtlab.gem_pool(x, p, eps)`` (``torch.library.custom_op`` + fake impl)
ONNX node          op_type ``GemPool``, domain ``ai.onnx.contrib``, attributes ``p``, ``eps`` (float),
                   ``plugin_version="1"``, ``plugin_namespace="trtlab"``
ONNX Runtime       onnxruntime-extensions looks custom Python ops up by op_type in ``ai.onnx.contrib``
TensorRT parser    FallbackPluginImporter: creator (name=op_type, plugin_version, plugin_namespace);
                   the ONNX domain is ignored
tensorrt.plugin    ``"trtlab::GemPool"`` (TensorRT >= 10.6; AOT implementation from 10.9)
=================  ==============================================================================

Submodules (each imports torch, ONNX Runtime, TensorRT or CuPy only inside the functions that need them):
:mod:`~trtlab.plugins.op` (PyTorch op, model variant, export), :mod:`~trtlab.plugins.ort` (ONNX Runtime),
:mod:`~trtlab.plugins.trt` (parser, registry, ``IPluginV3``, ``tensorrt.plugin``), :mod:`~trtlab.plugins.kernel`
(the CUDA kernel ``gem_pool.cu``: NVRTC and CuPy). ``cpp/`` holds a C++ ``IPluginV3`` for production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from trtlab.errors import InputMismatch
from trtlab.i18n import _

__all__ = [
    "BLOCK",
    "CPP_DIR",
    "DEFAULT_EPS",
    "DEFAULT_P",
    "ONNX_DOMAIN",
    "PLUGIN_DIR",
    "PLUGIN_ID",
    "PLUGIN_NAME",
    "PLUGIN_NAMESPACE",
    "PLUGIN_VERSION",
    "TORCH_OP",
    "WARP",
    "emulate_kernel",
    "gem_pool_ref",
    "launch_grid",
    "node_attributes",
    "output_shape",
    "plane_and_lane",
]

PLUGIN_NAME = "GemPool"
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = "trtlab"
#: ``tensorrt.plugin`` names a plugin "namespace::name".
PLUGIN_ID = f"{PLUGIN_NAMESPACE}::{PLUGIN_NAME}"
#: onnxruntime-extensions registers custom Python ops in this domain; TensorRT ignores the domain.
ONNX_DOMAIN = "ai.onnx.contrib"
TORCH_OP = "trtlab::gem_pool"
DEFAULT_P = 3.0
DEFAULT_EPS = 1e-6
#: Threads per block of the kernel (a multiple of the warp size: a warp handles one (n, c) plane).
BLOCK = 256
WARP = 32
PLUGIN_DIR = Path(__file__).resolve().parent
CPP_DIR = PLUGIN_DIR / "cpp"


def output_shape(shape: Sequence[Any]) -> tuple[Any, ...]:
    """GeM's shape rule, N×C×H×W → N×C×1×1, shared by the fake PyTorch impl and the TensorRT shape function.

    The dimensions may be symbolic (torch ``SymInt``, TensorRT ``ShapeExpr``): they are passed through, never
    converted to ``int``. Lab 05's first exercise writes this function.
    """
    dims = tuple(shape)
    if len(dims) != 4:
        raise InputMismatch(_("GemPool: input of rank {rank} (shape {dims}); expected N×C×H×W (rank 4). "
                              "Pool a feature map, before the flatten").format(rank=len(dims), dims=dims))
    return (dims[0], dims[1], 1, 1)


def gem_pool_ref(x: Any, p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> np.ndarray:
    """The NumPy reference (float64 math, float32 result): what every other implementation is compared with."""
    a = np.asarray(x)
    if a.ndim != 4:
        output_shape(a.shape)  # raises with the explanation
    if p <= 0:
        raise InputMismatch(_("GemPool: p={p}; expected p > 0 (1 = average pooling, 3 = the usual GeM)").format(p=p))
    pooled = np.mean(np.maximum(a.astype(np.float64), eps) ** p, axis=(2, 3), keepdims=True) ** (1.0 / p)
    return pooled.astype(np.float32)


def node_attributes(p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> dict[str, Any]:
    """The attributes of the ONNX ``GemPool`` node: the op's own (``p``, ``eps``) and the two strings the TensorRT
    parser uses, with the op_type, to find the plugin creator."""
    return {"p": float(p), "eps": float(eps), "plugin_version": PLUGIN_VERSION, "plugin_namespace": PLUGIN_NAMESPACE}


# ---------------------------------------------------------------- the kernel's index math (Lab 05, exercise 2)


def plane_and_lane(block_idx: int, thread_idx: int, block_dim: int = BLOCK) -> tuple[int, int]:
    """Which (n, c) plane and which lane of its warp a CUDA thread works on (``gem_pool.cu``): one warp per plane."""
    t = block_idx * block_dim + thread_idx
    return t // WARP, t % WARP


def launch_grid(planes: int, block: int = BLOCK) -> int:
    """Blocks needed so that every plane gets a warp: ``ceil(planes * 32 / block)``."""
    if block % WARP:
        raise InputMismatch(_("block of {block} threads; expected a multiple of {warp} (one warp per plane)").format(
            block=block, warp=WARP))
    return -(-planes * WARP // block)


def emulate_kernel(x: Any, p: float = DEFAULT_P, eps: float = DEFAULT_EPS, *,
                   mapping: Callable[[int, int, int], tuple[int, int]] = plane_and_lane, block: int = BLOCK,
                   grid: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``gem_pool.cu``'s launch in Python, thread by thread, with ``mapping`` as its index math.

    Returns ``(y, hits)``: the pooled output (NaN where no warp wrote a plane) and how many times each
    (plane, lane) pair was assigned (exactly 1 everywhere when the index math is right). Keep ``x`` small.
    """
    a = np.asarray(x, dtype=np.float64)
    n, c, h, w = a.shape
    planes, hw = n * c, h * w
    flat = a.reshape(planes, hw)
    grid = launch_grid(planes, block) if grid is None else grid
    hits = np.zeros((planes, WARP), dtype=np.int64)
    partial = np.zeros((planes, WARP))
    for b in range(grid):
        for t in range(block):
            plane, lane = (int(v) for v in mapping(b, t, block))
            if plane >= planes or plane < 0:
                continue  # the kernel's early return
            if not 0 <= lane < WARP:
                raise InputMismatch(_("thread {t} of block {b} got lane {lane}; a warp has lanes 0..{last}").format(
                    t=t, b=b, lane=lane, last=WARP - 1))
            hits[plane, lane] += 1
            partial[plane, lane] += np.sum(np.maximum(flat[plane, lane::WARP], eps) ** p)
    y = (partial.sum(axis=1) / hw) ** (1.0 / p)
    y[(hits == 0).all(axis=1)] = np.nan
    return y.reshape(n, c, 1, 1).astype(np.float32), hits
