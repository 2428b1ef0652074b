// The course's answer to Lab 05's kernel exercise, pasted into gem_pool.cu where it is included (a learner's own
// version replaces it: trtlab.plugins.kernel.source(gem_plane=...)). One warp reduces one (n, c) plane:
// each lane sums max(x, eps)^p over every 32nd value, a shuffle tree adds the 32 partial sums into lane 0.
__device__ float gem_plane(const float* __restrict__ x, int hw, float p, float eps, int lane) {
    float acc = 0.0f;
    for (int i = lane; i < hw; i += WARP) {
        acc += powf(fmaxf(x[i], eps), p);
    }
    for (int offset = WARP / 2; offset > 0; offset /= 2) {
        acc += __shfl_down_sync(0xffffffffu, acc, offset);
    }
    return powf(acc / (float)hw, 1.0f / p);   // meaningful in lane 0 only
}
