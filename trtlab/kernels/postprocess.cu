// Post-processing on the GPU (Lab 04): softmax + top-k for classification, one block per row of logits.
// Only k probabilities and k indices per image travel back to the host instead of the whole logits tensor.
//
// Launch: grid (N), block (BLOCK threads, a multiple of 32, at most 1024), dynamic shared memory C * 4 bytes.
// Ties in top-k go to the smaller class index (what a stable descending sort gives), so results are deterministic.

#define NEG_INF __int_as_float(0xff800000)  // -inf without math.h

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const unsigned short* p) {  // fp16 without cuda_fp16.h
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(*p));
    return f;
}

// Reduce (value, index) pairs to the block's largest value; ties keep the smaller index.
__device__ __forceinline__ void better(float& v, int& i, float ov, int oi) {
    if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
}

__device__ void block_argmax(float& v, int& i, float* red_v, int* red_i) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        better(v, i, __shfl_xor_sync(0xffffffffu, v, offset), __shfl_xor_sync(0xffffffffu, i, offset));
    }
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    if (lane == 0) { red_v[warp] = v; red_i[warp] = i; }
    __syncthreads();
    v = lane < warps ? red_v[lane] : NEG_INF;
    i = lane < warps ? red_i[lane] : 0x7fffffff;
    for (int offset = 16; offset > 0; offset >>= 1) {
        better(v, i, __shfl_xor_sync(0xffffffffu, v, offset), __shfl_xor_sync(0xffffffffu, i, offset));
    }
    __syncthreads();  // red_* may be reused right after
}

__device__ float block_sum(float v, float* red) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < warps ? red[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    __syncthreads();
    return v;
}

template <typename In>
__device__ void softmax_topk(const In* __restrict__ logits, int classes, int k, float* __restrict__ probs,
                             float* __restrict__ top_p, int* __restrict__ top_i) {
    extern __shared__ float row[];  // this row's probabilities
    __shared__ float red_v[32];
    __shared__ int red_i[32];
    const In* x = logits + (long long)blockIdx.x * classes;

    float m = NEG_INF;  // 1. the row's maximum, so exp() cannot overflow
    int unused = 0;
    for (int c = threadIdx.x; c < classes; c += blockDim.x) {
        row[c] = load(x + c);
        m = fmaxf(m, row[c]);
    }
    block_argmax(m, unused, red_v, red_i);

    float s = 0.0f;  // 2. the sum of exp(x - max)
    for (int c = threadIdx.x; c < classes; c += blockDim.x) {
        row[c] = expf(row[c] - m);
        s += row[c];
    }
    const float inv = 1.0f / block_sum(s, red_v);
    for (int c = threadIdx.x; c < classes; c += blockDim.x) {
        row[c] *= inv;
        if (probs) probs[(long long)blockIdx.x * classes + c] = row[c];
    }
    __syncthreads();

    for (int j = 0; j < k; ++j) {  // 3. k rounds of block argmax; each winner is then knocked out (probs >= 0)
        float v = NEG_INF;
        int i = 0x7fffffff;
        for (int c = threadIdx.x; c < classes; c += blockDim.x) better(v, i, row[c], c);
        block_argmax(v, i, red_v, red_i);
        if (threadIdx.x == 0) {
            top_p[blockIdx.x * k + j] = v;
            top_i[blockIdx.x * k + j] = i;
            row[i] = -1.0f;
        }
        __syncthreads();
    }
}

extern "C" __global__ void softmax_topk_f32(const float* logits, int classes, int k, float* probs, float* top_p,
                                            int* top_i) {
    softmax_topk(logits, classes, k, probs, top_p, top_i);
}

extern "C" __global__ void softmax_topk_f16(const unsigned short* logits, int classes, int k, float* probs,
                                            float* top_p, int* top_i) {
    softmax_topk(logits, classes, k, probs, top_p, top_i);
}
