// Fused pre-processing, one kernel per batch (Lab 04):
//   uint8 HWC (BGR or RGB) -> bilinear resize -> channel swap -> (x/255 - mean)/std -> planar CHW, fp32 or fp16.
// The design of tensorRT_Pro's warpAffine kernel and tensorrtx's preprocess.cu, with the pixel-centre convention
// stated in bilinear_taps.cuh and checked against OpenCV INTER_LINEAR in trtlab's tests.
//
// Self-contained on purpose (no #include <cuda_fp16.h>): NVRTC compiles it on a machine without the CUDA headers,
// so the CPU-only CI can still check every kernel for syntax and type errors.

#include "bilinear_taps.cuh"

#ifndef PIXELS_PER_THREAD
#define PIXELS_PER_THREAD 2  // output pixels per thread along x, blockDim.x apart (keeps stores coalesced)
#endif

// fp16 without cuda_fp16.h: round-to-nearest-even conversion in one PTX instruction.
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(unsigned short* p, float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    *p = h;
}

struct Norm {        // y[c] = x[src_channel(c)] * mul[c] + add[c], with mul = 1/(255 std), add = -mean/std
    float mul0, mul1, mul2, add0, add1, add2;
};

// One thread per PIXELS_PER_THREAD output pixels of one row of one image: grid (ceil(W / (blockDim.x *
// PIXELS_PER_THREAD)), ceil(H / blockDim.y), N). Threads with consecutive threadIdx.x read neighbouring input
// pixels and write neighbouring output pixels of each plane: coalesced loads and stores.
template <typename Out>
__device__ void resize_normalize(const unsigned char* __restrict__ src, int src_h, int src_w,
                                 long long src_row_stride, long long src_image_stride,
                                 Out* __restrict__ dst, int dst_h, int dst_w,
                                 float scale_x, float scale_y, int swap_rb, Norm norm) {
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int n = blockIdx.z;
    if (y >= dst_h) return;
    int y0, y1;
    float wy;
    bilinear_taps(y, scale_y, src_h, &y0, &y1, &wy);
    const unsigned char* image = src + n * src_image_stride;
    const unsigned char* row0 = image + y0 * src_row_stride;
    const unsigned char* row1 = image + y1 * src_row_stride;
    const long long plane = (long long)dst_h * dst_w;
    Out* out = dst + n * 3 * plane + (long long)y * dst_w;
    const int c0 = swap_rb ? 2 : 0, c2 = swap_rb ? 0 : 2;  // output channel 0 reads input channel c0

#pragma unroll
    for (int k = 0; k < PIXELS_PER_THREAD; ++k) {
        const int x = (blockIdx.x * PIXELS_PER_THREAD + k) * blockDim.x + threadIdx.x;
        if (x >= dst_w) return;
        int x0, x1;
        float wx;
        bilinear_taps(x, scale_x, src_w, &x0, &x1, &wx);
        const unsigned char* a = row0 + 3 * x0;  // the four taps, 3 bytes each
        const unsigned char* b = row0 + 3 * x1;
        const unsigned char* c = row1 + 3 * x0;
        const unsigned char* d = row1 + 3 * x1;
        float v[3];
#pragma unroll
        for (int ch = 0; ch < 3; ++ch) {
            const float top = a[ch] + wx * (b[ch] - a[ch]);
            const float bottom = c[ch] + wx * (d[ch] - c[ch]);
            v[ch] = top + wy * (bottom - top);
        }
        store(out + x, v[c0] * norm.mul0 + norm.add0);
        store(out + plane + x, v[1] * norm.mul1 + norm.add1);
        store(out + 2 * plane + x, v[c2] * norm.mul2 + norm.add2);
    }
}

extern "C" __global__ void preprocess_f32(const unsigned char* src, int src_h, int src_w, long long src_row_stride,
                                          long long src_image_stride, float* dst, int dst_h, int dst_w,
                                          float scale_x, float scale_y, int swap_rb, float mul0, float mul1, float mul2,
                                          float add0, float add1, float add2) {
    resize_normalize(src, src_h, src_w, src_row_stride, src_image_stride, dst, dst_h, dst_w, scale_x, scale_y,
                     swap_rb, Norm{mul0, mul1, mul2, add0, add1, add2});
}

extern "C" __global__ void preprocess_f16(const unsigned char* src, int src_h, int src_w, long long src_row_stride,
                                          long long src_image_stride, unsigned short* dst, int dst_h, int dst_w,
                                          float scale_x, float scale_y, int swap_rb, float mul0, float mul1, float mul2,
                                          float add0, float add1, float add2) {
    resize_normalize(src, src_h, src_w, src_row_stride, src_image_stride, dst, dst_h, dst_w, scale_x, scale_y,
                     swap_rb, Norm{mul0, mul1, mul2, add0, add1, add2});
}

// Letterbox: an aspect-preserving affine warp with a constant border (the detector-style input).
// m = the inverse affine matrix (output pixel centre -> input pixel centre, the cv2.warpAffine convention with
// pixel i's centre at coordinate i). A tap outside the image reads the border value, as cv2.BORDER_CONSTANT does,
// so edge pixels blend with the border instead of being cut hard.
struct Affine {
    float m0, m1, m2, m3, m4, m5;
};

template <typename Out>
__device__ void warp_affine_normalize(const unsigned char* __restrict__ src, int src_h, int src_w,
                                      long long src_row_stride, long long src_image_stride,
                                      Out* __restrict__ dst, int dst_h, int dst_w, Affine m, float border,
                                      int swap_rb, Norm norm) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int n = blockIdx.z;
    if (x >= dst_w || y >= dst_h) return;
    const float sx = m.m0 * x + m.m1 * y + m.m2;
    const float sy = m.m3 * x + m.m4 * y + m.m5;
    const float fx0 = floorf(sx), fy0 = floorf(sy);
    const int x0 = (int)fx0, y0 = (int)fy0;
    const float wx = sx - fx0, wy = sy - fy0;
    const unsigned char* image = src + n * src_image_stride;
    float v[3] = {border, border, border};
    if (x0 >= -1 && x0 < src_w && y0 >= -1 && y0 < src_h) {  // at least one tap inside the image
        float t[4][3];
#pragma unroll
        for (int tap = 0; tap < 4; ++tap) {
            const int xi = x0 + (tap & 1), yi = y0 + (tap >> 1);
            const bool inside = xi >= 0 && xi < src_w && yi >= 0 && yi < src_h;
            const unsigned char* p = image + yi * src_row_stride + 3 * xi;
#pragma unroll
            for (int ch = 0; ch < 3; ++ch) t[tap][ch] = inside ? (float)p[ch] : border;
        }
#pragma unroll
        for (int ch = 0; ch < 3; ++ch) {
            const float top = t[0][ch] + wx * (t[1][ch] - t[0][ch]);
            const float bottom = t[2][ch] + wx * (t[3][ch] - t[2][ch]);
            v[ch] = top + wy * (bottom - top);
        }
    }
    const int c0 = swap_rb ? 2 : 0, c2 = swap_rb ? 0 : 2;
    const long long plane = (long long)dst_h * dst_w;
    Out* out = dst + n * 3 * plane + (long long)y * dst_w + x;
    store(out, v[c0] * norm.mul0 + norm.add0);
    store(out + plane, v[1] * norm.mul1 + norm.add1);
    store(out + 2 * plane, v[c2] * norm.mul2 + norm.add2);
}

extern "C" __global__ void letterbox_f32(const unsigned char* src, int src_h, int src_w, long long src_row_stride,
                                         long long src_image_stride, float* dst, int dst_h, int dst_w, float m0,
                                         float m1, float m2, float m3, float m4, float m5, float border, int swap_rb,
                                         float mul0, float mul1, float mul2, float add0, float add1, float add2) {
    warp_affine_normalize(src, src_h, src_w, src_row_stride, src_image_stride, dst, dst_h, dst_w,
                          Affine{m0, m1, m2, m3, m4, m5}, border, swap_rb, Norm{mul0, mul1, mul2, add0, add1, add2});
}

extern "C" __global__ void letterbox_f16(const unsigned char* src, int src_h, int src_w, long long src_row_stride,
                                         long long src_image_stride, unsigned short* dst, int dst_h, int dst_w,
                                         float m0, float m1, float m2, float m3, float m4, float m5, float border,
                                         int swap_rb, float mul0, float mul1, float mul2, float add0, float add1,
                                         float add2) {
    warp_affine_normalize(src, src_h, src_w, src_row_stride, src_image_stride, dst, dst_h, dst_w,
                          Affine{m0, m1, m2, m3, m4, m5}, border, swap_rb, Norm{mul0, mul1, mul2, add0, add1, add2});
}
