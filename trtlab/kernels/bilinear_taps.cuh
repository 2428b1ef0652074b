// Where one output pixel samples its input: the index math of the bilinear sample (Lab 04, exercise 1).
//
// Convention (stated, so it can be checked): pixel centres line up, the OpenCV INTER_LINEAR and
// torch `F.interpolate(mode="bilinear", align_corners=False, antialias=False)` convention. Output pixel `dst`
// has its centre at dst + 0.5; in input units that is (dst + 0.5) * scale, i.e. input coordinate
// (dst + 0.5) * scale - 0.5 measured from the centre of input pixel 0. Both references clamp a negative
// coordinate to 0 (left/top edge) and repeat the last pixel at the right/bottom edge.
//   dst      output index (column or row)
//   scale    input size / output size along this axis
//   size     input size along this axis
//   *i0,*i1  the two input indices to blend (both inside [0, size - 1])
//   *w1      weight of *i1 (the weight of *i0 is 1 - *w1)
__device__ void bilinear_taps(int dst, float scale, int size, int* i0, int* i1, float* w1) {
    float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);
    int lo = min((int)src, size - 1);
    *i0 = lo;
    *i1 = min(lo + 1, size - 1);
    *w1 = src - lo;
}
