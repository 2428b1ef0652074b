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

#ifndef U8_MAGIC
#define U8_MAGIC 0  // 1: convert bytes to float with a bit trick instead of the int-to-float unit (a benchmark variant)
#endif

__device__ __forceinline__ float u8(unsigned char v) {
#if U8_MAGIC
    return __uint_as_float(0x4B000000u | v) - 8388608.0f;  // 2^23 + v as a float, minus 2^23: exact for 0..255
#else
    return (float)v;
#endif
}

struct Norm {        // y[c] = x[src_channel(c)] * mul[c] + add[c], with mul = 1/(255 std), add = -mean/std
    float mul0, mul1, mul2, add0, add1, add2;
};

// One thread per PIXELS_PER_THREAD output pixels of one row of one image: grid (ceil(W / (blockDim.x *
// PIXELS_PER_THREAD)), ceil(H / blockDim.y), N). A thread's pixels are blockDim.x apart, so threads with
// consecutive threadIdx.x read neighbouring input pixels and write neighbouring output pixels of each plane:
// coalesced loads and stores.
//
// Speed: a thread first issues the loads of all its pixels (12 bytes each: 4 taps x 3 channels), and only then
// blends and stores, so many loads are in flight at once. A pixel past the right edge loads from a clamped (valid)
// column and skips its store; an early `return` instead would stop the compiler from hoisting the loads.
// Measured (Nsight Compute, H200): the SMs' instruction issue, not DRAM, is the limit at scales <= 2; the 12
// one-byte loads per output pixel are the next thing to cut (see docs/lab04-kernels.md).
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
    const int first = blockIdx.x * PIXELS_PER_THREAD * blockDim.x + threadIdx.x;

    unsigned char tap[PIXELS_PER_THREAD][4][3];  // 1. all loads first: many bytes in flight per thread
    float wx[PIXELS_PER_THREAD];
#pragma unroll
    for (int k = 0; k < PIXELS_PER_THREAD; ++k) {
        const int x = min(first + k * (int)blockDim.x, dst_w - 1);
        int x0, x1;
        bilinear_taps(x, scale_x, src_w, &x0, &x1, &wx[k]);
#pragma unroll
        for (int ch = 0; ch < 3; ++ch) {
            tap[k][0][ch] = __ldg(row0 + 3 * x0 + ch);  // __ldg: read-only data cache path
            tap[k][1][ch] = __ldg(row0 + 3 * x1 + ch);
            tap[k][2][ch] = __ldg(row1 + 3 * x0 + ch);
            tap[k][3][ch] = __ldg(row1 + 3 * x1 + ch);
        }
    }

    const long long plane = (long long)dst_h * dst_w;
    Out* out = dst + n * 3 * plane + (long long)y * dst_w;
    const int c0 = swap_rb ? 2 : 0, c2 = swap_rb ? 0 : 2;  // output channel 0 reads input channel c0
#pragma unroll
    for (int k = 0; k < PIXELS_PER_THREAD; ++k) {  // 2. blend, normalise, store planar
        const int x = first + k * (int)blockDim.x;
        if (x < dst_w) {
            float v[3];
#pragma unroll
            for (int ch = 0; ch < 3; ++ch) {
                const float a = u8(tap[k][0][ch]), b = u8(tap[k][1][ch]), c = u8(tap[k][2][ch]), d = u8(tap[k][3][ch]);
                const float top = a + wx[k] * (b - a);
                const float bottom = c + wx[k] * (d - c);
                v[ch] = top + wy * (bottom - top);
            }
            store(out + x, v[c0] * norm.mul0 + norm.add0);
            store(out + plane + x, v[1] * norm.mul1 + norm.add1);
            store(out + 2 * plane + x, v[c2] * norm.mul2 + norm.add2);
        }
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

// Tiled variant for scales <= 2 (same size, up-scales, down-scales up to 2x): every input byte is needed, so the
// block first copies its tile's input footprint into shared memory with 16-byte loads (one request per 16 bytes,
// instead of one per byte and tap), then blends from shared memory. Same taps, same arithmetic, same result as
// preprocess_f32/f16. Measured on an H200 it is *slower* than the direct kernel (Nsight Compute: 74 vs 63 us for a
// 2x downscale of 16 1080p frames): the SMs' instruction issue is the limit, and staging adds shared-memory
// traffic. Kept as a measured alternative (method="tiled"), not the default.
// Launch: block (TILE_W, 4) threads (blockDim.x must be TILE_W); grid (ceil(W / TILE_W), ceil(H / TILE_H), N).
#define TILE_W 64
#define TILE_H 16
#define TILE_ROWS_MAX (2 * TILE_H + 2)                          // input rows a tile needs at scale <= 2
#define TILE_CHUNKS (((2 * TILE_W + 2) * 3 + 15 + 15) / 16)     // 16-byte chunks per input row, with alignment slack

template <typename Out>
__device__ void resize_normalize_tiled(const unsigned char* __restrict__ src, int src_h, int src_w,
                                       long long src_row_stride, long long src_image_stride, long long image_bytes,
                                       Out* __restrict__ dst, int dst_h, int dst_w,
                                       float scale_x, float scale_y, int swap_rb, Norm norm) {
    __shared__ __align__(16) unsigned char tile[TILE_ROWS_MAX][TILE_CHUNKS * 16];
    const int n = blockIdx.z;
    const int ox0 = blockIdx.x * TILE_W, oy0 = blockIdx.y * TILE_H;
    const int ox1 = min(ox0 + TILE_W, dst_w) - 1, oy1 = min(oy0 + TILE_H, dst_h) - 1;
    int ix0, ix1, iy0, iy1, unused;
    float w;
    bilinear_taps(ox0, scale_x, src_w, &ix0, &unused, &w);  // the footprint: taps grow with the output index
    bilinear_taps(ox1, scale_x, src_w, &unused, &ix1, &w);
    bilinear_taps(oy0, scale_y, src_h, &iy0, &unused, &w);
    bilinear_taps(oy1, scale_y, src_h, &unused, &iy1, &w);
    const unsigned char* image = src + n * src_image_stride;
    const int rows = iy1 - iy0 + 1, b0 = 3 * ix0, b1 = 3 * ix1 + 3;

    // 1. copy the footprint, 16 aligned bytes per request (bytes one by one only at the image's first/last bytes)
    const int tid = threadIdx.y * blockDim.x + threadIdx.x;
    for (int i = tid; i < rows * TILE_CHUNKS; i += blockDim.x * blockDim.y) {
        const int r = i / TILE_CHUNKS, c = i % TILE_CHUNKS;
        const unsigned char* row = image + (long long)(iy0 + r) * src_row_stride;
        const unsigned char* p = (const unsigned char*)(((unsigned long long)(row + b0) & ~15ull) + 16 * c);
        if (p >= row + b1) continue;
        if (p >= image && p + 16 <= image + image_bytes) {
            *(uint4*)&tile[r][16 * c] = __ldg((const uint4*)p);
        } else {
            for (int j = 0; j < 16; ++j) {
                const unsigned char* q = p + j;
                tile[r][16 * c + j] = (q >= image && q < image + image_bytes) ? *q : 0;
            }
        }
    }
    __syncthreads();

    // 2. blend from shared memory; a thread owns one column and TILE_H / blockDim.y rows of the tile
    const int x = ox0 + threadIdx.x;
    if (x > ox1) return;
    int x0, x1;
    float wx;
    bilinear_taps(x, scale_x, src_w, &x0, &x1, &wx);
    const int lx0 = 3 * (x0 - ix0), lx1 = 3 * (x1 - ix0);
    const long long plane = (long long)dst_h * dst_w;
    const int c0 = swap_rb ? 2 : 0, c2 = swap_rb ? 0 : 2;
    for (int y = oy0 + threadIdx.y; y <= oy1; y += blockDim.y) {
        int y0, y1;
        float wy;
        bilinear_taps(y, scale_y, src_h, &y0, &y1, &wy);
        const int r0 = y0 - iy0, r1 = y1 - iy0;  // rows in the tile, and where each starts inside its first chunk
        const int s0 = (int)((unsigned long long)(image + (long long)y0 * src_row_stride + b0) & 15ull);
        const int s1 = (int)((unsigned long long)(image + (long long)y1 * src_row_stride + b0) & 15ull);
        float v[3];
#pragma unroll
        for (int ch = 0; ch < 3; ++ch) {
            const float a = u8(tile[r0][s0 + lx0 + ch]), b = u8(tile[r0][s0 + lx1 + ch]);
            const float c = u8(tile[r1][s1 + lx0 + ch]), d = u8(tile[r1][s1 + lx1 + ch]);
            const float top = a + wx * (b - a);
            const float bottom = c + wx * (d - c);
            v[ch] = top + wy * (bottom - top);
        }
        Out* out = dst + n * 3 * plane + (long long)y * dst_w + x;
        store(out, v[c0] * norm.mul0 + norm.add0);
        store(out + plane, v[1] * norm.mul1 + norm.add1);
        store(out + 2 * plane, v[c2] * norm.mul2 + norm.add2);
    }
}

extern "C" __global__ void preprocess_tiled_f32(const unsigned char* src, int src_h, int src_w,
                                                long long src_row_stride, long long src_image_stride,
                                                long long image_bytes, float* dst, int dst_h, int dst_w,
                                                float scale_x, float scale_y, int swap_rb, float mul0, float mul1,
                                                float mul2, float add0, float add1, float add2) {
    resize_normalize_tiled(src, src_h, src_w, src_row_stride, src_image_stride, image_bytes, dst, dst_h, dst_w,
                           scale_x, scale_y, swap_rb, Norm{mul0, mul1, mul2, add0, add1, add2});
}

extern "C" __global__ void preprocess_tiled_f16(const unsigned char* src, int src_h, int src_w,
                                                long long src_row_stride, long long src_image_stride,
                                                long long image_bytes, unsigned short* dst, int dst_h, int dst_w,
                                                float scale_x, float scale_y, int swap_rb, float mul0, float mul1,
                                                float mul2, float add0, float add1, float add2) {
    resize_normalize_tiled(src, src_h, src_w, src_row_stride, src_image_stride, image_bytes, dst, dst_h, dst_w,
                           scale_x, scale_y, swap_rb, Norm{mul0, mul1, mul2, add0, add1, add2});
}

// ---------------------------------------------------------------- exact-scale fast paths
// With the stated convention an exact 1x "resize" is the identity (src = dst, weight 0) and an exact 2x downscale
// samples at src = 2 dst + 0.5, i.e. the mean of a 2x2 block (weights 0.5/0.5 on both axes), as OpenCV's own
// special cases do. These kernels compute exactly that, with the same float arithmetic as preprocess_f32/f16 (the
// blend of integers with weights 0 or 1/2 is exact in float), but with wide memory accesses: the general kernel
// spends 12 one-byte loads per output pixel, and the load/store unit, not DRAM, was its limit (docs/lab04-kernels.md).
//   same size: a thread reads 16 pixels = 48 bytes as three 16-byte loads and writes 16 values per plane as
//              16-byte stores (fp16: two per plane, fp32: four);
//   2x down:   a thread reads 16 input pixels of each of its two input rows (6 x 16-byte loads) and writes 8
//              output pixels per plane (fp16: one 16-byte store per plane, fp32: two).
// Bytes become floats without the int-to-float unit: __byte_perm places a byte (or a sum of bytes) under the
// exponent of 2^23, and subtracting 2^23 leaves its exact value.
// Preconditions, checked by the Python wrapper (trtlab.kernels.exact_scale): input rows and images 16-byte aligned,
// output rows 16-byte aligned (fp16: width % 8 == 0, fp32: width % 4 == 0), width % 16 == 0 (same size) or output
// width % 8 == 0 (2x down). Launch: block EXACT_BLOCK threads, grid (ceil(h * groups / EXACT_BLOCK), N) with
// groups = w / 16 (same size) or dst_w / 8 (2x down) thread groups per row.

__device__ __forceinline__ unsigned byte_at(const unsigned (&word)[12], int b) {  // byte b of 48, zero-extended
    return __byte_perm(word[b >> 2], 0u, 0x4440u + (b & 3));
}

__device__ __forceinline__ float exact_float(unsigned v) {  // v < 2^23 as a float, via the exponent trick
    return __uint_as_float(0x4B000000u | v) - 8388608.0f;
}

__device__ __forceinline__ void load48(const unsigned char* p, unsigned (&word)[12]) {
    const uint4* q = (const uint4*)p;
    const uint4 a = __ldg(q), b = __ldg(q + 1), c = __ldg(q + 2);
    word[0] = a.x; word[1] = a.y; word[2] = a.z; word[3] = a.w;
    word[4] = b.x; word[5] = b.y; word[6] = b.z; word[7] = b.w;
    word[8] = c.x; word[9] = c.y; word[10] = c.z; word[11] = c.w;
}

__device__ __forceinline__ unsigned pack_half2(float lo, float hi) {  // two fp16 (round to nearest even) in 32 bits
    unsigned r;
#if __CUDA_ARCH__ >= 800
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#else
    unsigned short l, h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(l) : "f"(lo));
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(hi));
    r = (unsigned)l | ((unsigned)h << 16);
#endif
    return r;
}

// store P (a multiple of 8) consecutive normalised values with 16-byte stores
template <int P>
__device__ __forceinline__ void store_wide(unsigned short* p, const float (&v)[P], float mul, float add) {
#pragma unroll
    for (int i = 0; i < P; i += 8) {
        uint4 q;
        q.x = pack_half2(fmaf(v[i + 0], mul, add), fmaf(v[i + 1], mul, add));
        q.y = pack_half2(fmaf(v[i + 2], mul, add), fmaf(v[i + 3], mul, add));
        q.z = pack_half2(fmaf(v[i + 4], mul, add), fmaf(v[i + 5], mul, add));
        q.w = pack_half2(fmaf(v[i + 6], mul, add), fmaf(v[i + 7], mul, add));
        *(uint4*)(p + i) = q;
    }
}

template <int P>
__device__ __forceinline__ void store_wide(float* p, const float (&v)[P], float mul, float add) {
#pragma unroll
    for (int i = 0; i < P; i += 4) {
        *(float4*)(p + i) = make_float4(fmaf(v[i], mul, add), fmaf(v[i + 1], mul, add), fmaf(v[i + 2], mul, add),
                                        fmaf(v[i + 3], mul, add));
    }
}

// where input channel ch goes: its output plane (the R/B swap) and that plane's normalisation
__device__ __forceinline__ int plane_of(int ch, int swap_rb) { return swap_rb ? 2 - ch : ch; }
__device__ __forceinline__ float mul_of(int plane, Norm n) { return plane == 0 ? n.mul0 : plane == 1 ? n.mul1 : n.mul2; }
__device__ __forceinline__ float add_of(int plane, Norm n) { return plane == 0 ? n.add0 : plane == 1 ? n.add1 : n.add2; }

template <typename Out>
__device__ void same_size_normalize(const unsigned char* __restrict__ src, long long src_row_stride,
                                    long long src_image_stride, Out* __restrict__ dst, int h, int w, int swap_rb,
                                    Norm norm) {
    const int groups = w / 16;  // 16 pixels per thread
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)h * groups) return;
    const int y = (int)(t / groups), g = (int)(t - (long long)y * groups), n = blockIdx.y;
    unsigned word[12];
    load48(src + n * src_image_stride + y * src_row_stride + 48 * g, word);
    const long long plane = (long long)h * w;
    Out* out = dst + n * 3 * plane + (long long)y * w + 16 * g;
#pragma unroll
    for (int ch = 0; ch < 3; ++ch) {
        float v[16];
#pragma unroll
        for (int i = 0; i < 16; ++i) {  // one byte permute builds 2^23 + byte as a float
            const int b = 3 * i + ch;
            v[i] = __uint_as_float(__byte_perm(word[b >> 2], 0x4B000000u, 0x7440u + (b & 3))) - 8388608.0f;
        }
        const int p = plane_of(ch, swap_rb);
        store_wide<16>(out + p * plane, v, mul_of(p, norm), add_of(p, norm));
    }
}

template <typename Out>
__device__ void half_size_normalize(const unsigned char* __restrict__ src, long long src_row_stride,
                                    long long src_image_stride, Out* __restrict__ dst, int dst_h, int dst_w,
                                    int swap_rb, Norm norm) {
    const int groups = dst_w / 8;  // 8 output pixels (16 input pixels of 2 rows) per thread
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)dst_h * groups) return;
    const int y = (int)(t / groups), g = (int)(t - (long long)y * groups), n = blockIdx.y;
    const unsigned char* row0 = src + n * src_image_stride + (2 * y) * src_row_stride + 48 * g;
    unsigned top[12], bottom[12];
    load48(row0, top);
    load48(row0 + src_row_stride, bottom);
    const long long plane = (long long)dst_h * dst_w;
    Out* out = dst + n * 3 * plane + (long long)y * dst_w + 8 * g;
#pragma unroll
    for (int ch = 0; ch < 3; ++ch) {
        float v[8];
#pragma unroll
        for (int k = 0; k < 8; ++k) {  // output pixel k = mean of input pixels 2k, 2k+1 of both rows
            const int b = 6 * k + ch;
            const unsigned sum = byte_at(top, b) + byte_at(top, b + 3) + byte_at(bottom, b) + byte_at(bottom, b + 3);
            v[k] = exact_float(sum) * 0.25f;  // exact: the general kernel's two 0.5 blends give the same float
        }
        const int p = plane_of(ch, swap_rb);
        store_wide<8>(out + p * plane, v, mul_of(p, norm), add_of(p, norm));
    }
}

#define EXACT_KERNEL(NAME, BODY, OUT)                                                                              \
    extern "C" __global__ void NAME(const unsigned char* src, long long src_row_stride, long long src_image_stride, \
                                    OUT* dst, int dst_h, int dst_w, int swap_rb, float mul0, float mul1,           \
                                    float mul2, float add0, float add1, float add2) {                              \
        BODY(src, src_row_stride, src_image_stride, dst, dst_h, dst_w, swap_rb,                                    \
             Norm{mul0, mul1, mul2, add0, add1, add2});                                                             \
    }
EXACT_KERNEL(preprocess_same_f32, same_size_normalize, float)
EXACT_KERNEL(preprocess_same_f16, same_size_normalize, unsigned short)
EXACT_KERNEL(preprocess_half_f32, half_size_normalize, float)
EXACT_KERNEL(preprocess_half_f16, half_size_normalize, unsigned short)

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
