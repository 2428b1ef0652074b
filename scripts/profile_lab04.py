"""Launch the Lab 04 pre-processing kernels a few times for Nsight Compute (the roofline cases of the benchmark):

    ncu --section SpeedOfLight --kernel-name regex:preprocess --launch-skip 1 --launch-count 4 \
        python3 scripts/profile_lab04.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cupy as cp  # noqa: E402

from trtlab import kernels  # noqa: E402

x = cp.asarray(kernels.sample_frames(16))
for method in ("exact", "direct", "tiled"):
    for out_hw in ((540, 960), (1080, 1920)):
        batch = x if out_hw == (540, 960) else x[:8]
        out = cp.empty((len(batch), 3, *out_hw), cp.float16)
        for _ in range(2):
            kernels.preprocess(batch, out_hw, dtype=np.float16, out=out, method=method)
cp.cuda.Device().synchronize()
print("done")
