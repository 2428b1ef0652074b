"""``tl.triton_tensorrt``: Lab 06's TensorRT plan repository, the name learner cells use for
:mod:`trtlab.serve.tensorrt_plan` (this module *is* that module, so both names share one state)."""

import sys

from trtlab.serve import tensorrt_plan

sys.modules[__name__] = tensorrt_plan
