// VarRoIPool: varying-size RoI pooling, float32. The definition is reference.py beside this file.
//
// One thread per output element (n, c, r, j) of pooled (N, C, H, W_max), grid-stride loop, so any
// grid size covers the output. The thread of (n, 0, 0, 0) also writes widths[n].
// batch_index values outside [0, B) give an all-zero region (a kernel cannot raise).

#define MIN_EXTENT 1e-3f

__device__ __forceinline__ int pooled_width(float x1, float y1, float x2, float y2, int height, int max_width)
{
    // Same float32 operations, in the same order, as pooled_widths_ref: the width must match exactly.
    float w = fmaxf(x2 - x1, MIN_EXTENT);
    float h = fmaxf(y2 - y1, MIN_EXTENT);
    float ratio = __fdiv_rn(__fmul_rn((float)height, w), h);
    float c = ceilf(ratio);
    if (!(c >= 1.0f)) return 1;  // also catches NaN
    if (c >= (float)max_width) return max_width;
    return (int)c;
}

__device__ __forceinline__ float tap(const float* fmap, int hf, int wf, int y, int x)
{
    return (y >= 0 && y < hf && x >= 0 && x < wf) ? fmap[(long long)y * wf + x] : 0.0f;
}

extern "C" __global__ void var_roi_pool_fp32(
    const float* __restrict__ features,   // (B, C, Hf, Wf)
    const float* __restrict__ rois,       // (N, 4) x1, y1, x2, y2 in image pixels
    const int* __restrict__ batch_index,  // (N,)
    float* __restrict__ pooled,           // (N, C, H, W_max)
    int* __restrict__ widths,             // (N,)
    int n, int channels, int hf, int wf, int batch,
    int stride, int height, int max_width)
{
    const long long total = (long long)n * channels * height * max_width;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const int j = (int)(idx % max_width);
        long long t = idx / max_width;
        const int r = (int)(t % height);
        t /= height;
        const int ch = (int)(t % channels);
        const int i = (int)(t / channels);

        const float x1 = rois[4 * i], y1 = rois[4 * i + 1], x2 = rois[4 * i + 2], y2 = rois[4 * i + 3];
        const int wi = pooled_width(x1, y1, x2, y2, height, max_width);
        if (ch == 0 && r == 0 && j == 0) widths[i] = wi;
        const int b = batch_index[i];
        if (j >= wi || b < 0 || b >= batch) {
            pooled[idx] = 0.0f;
            continue;
        }
        // Sample positions in double: in float32 a position far from the origin is off by ~1e-5
        // cells, which times the feature gradient exceeds the fp32 tolerance. It is a handful of
        // double operations per output element, against four float loads.
        const double x = (double)x1 + ((j + 0.5) * ((double)x2 - (double)x1)) / wi;
        const double y = (double)y1 + ((r + 0.5) * ((double)y2 - (double)y1)) / height;
        const double fx = x / stride - 0.5;
        const double fy = y / stride - 0.5;
        const double fx0 = floor(fx), fy0 = floor(fy);
        const float ax = (float)(fx - fx0), ay = (float)(fy - fy0);
        // Outside the int range a sample is far outside the map: every tap is padding.
        if (fx0 < -2.0 || fx0 > (double)wf || fy0 < -2.0 || fy0 > (double)hf) {
            pooled[idx] = 0.0f;
            continue;
        }
        const int x0 = (int)fx0, y0 = (int)fy0;
        const float* fmap = features + ((long long)b * channels + ch) * hf * wf;
        const float v = (1.0f - ay) * ((1.0f - ax) * tap(fmap, hf, wf, y0, x0) + ax * tap(fmap, hf, wf, y0, x0 + 1))
                      + ay * ((1.0f - ax) * tap(fmap, hf, wf, y0 + 1, x0) + ax * tap(fmap, hf, wf, y0 + 1, x0 + 1));
        pooled[idx] = v;
    }
}
