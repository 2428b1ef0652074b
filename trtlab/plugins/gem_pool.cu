// GeM pooling (generalized mean) over the H x W plane of an NCHW float32 tensor: Lab 05's plugin kernel.
//
//     y[n, c] = ( mean_{h,w} max(x[n, c, h, w], eps)^p )^(1/p)        output N x C x 1 x 1
//
// One warp per (n, c) plane: the 32 lanes stride over the plane's H*W values (coalesced loads), accumulate in
// float32, and a warp shuffle reduction combines the 32 partial sums; lane 0 writes the result.
// Index math (Lab 05 exercise): global thread t = blockIdx.x * blockDim.x + threadIdx.x,
// plane = t / 32, lane = t % 32; a warp whose plane is past the end returns as a whole.
//
// Two entry points share the device function gem_plane (gem_plane.cuh, or a learner's version pasted in its place):
//   gem_pool_f32      p and eps as kernel arguments (CuPy launches it: the JIT tensorrt.plugin impl, tests)
//   gem_pool_aot_f32  p and eps baked in as GEM_P / GEM_EPS at compile time, and the argument order TensorRT's
//                     AOT plugins use: inputs, then int32 scalars, then outputs (tensorrt.plugin.aot_impl)

#define WARP 32

#include "gem_plane.cuh"   // __device__ float gem_plane(x, hw, p, eps, lane): Lab 05's exercise

extern "C" __global__ void gem_pool_f32(const float* __restrict__ x, float p, float eps, int planes, int hw,
                                        float* __restrict__ y) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const int plane = (int)(t / WARP);
    const int lane = (int)(t % WARP);
    if (plane >= planes) return;              // the whole warp leaves together: the shuffle stays convergent
    const float r = gem_plane(x + (long long)plane * hw, hw, p, eps, lane);
    if (lane == 0) y[plane] = r;
}

#ifdef GEM_P
extern "C" __global__ void gem_pool_aot_f32(const float* __restrict__ x, int planes, int hw,
                                            float* __restrict__ y) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const int plane = (int)(t / WARP);
    const int lane = (int)(t % WARP);
    if (plane >= planes) return;
    const float r = gem_plane(x + (long long)plane * hw, hw, GEM_P, GEM_EPS, lane);
    if (lane == 0) y[plane] = r;
}
#endif
