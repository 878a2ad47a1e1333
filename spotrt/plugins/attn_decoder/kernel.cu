// AttnDecoder: greedy attention-LSTM decoding, float32. The definition is reference.py beside this file.
//
// One thread block per region; threads loop over hidden units (and attention columns, classes);
// the recurrent state (h, c, context, gates, scores, logits) lives in shared memory and every step
// of the decode runs in this one launch. A block stops as soon as its region emits end-of-word (0)
// and fills the remaining steps with (0, 1.0): that is what the decoder's "stop once every region
// has ended" produces, so the early stop comes for free per block and no block waits for another.
//
// Launch: grid = N blocks, block = a multiple of 32 (<= 1024), dynamic shared memory =
// spec.shared_bytes(...). keys_ws is a workspace of N * W * A floats (the projected memory).

#define MASK_FILL (-1e4f)

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

// Block-wide max/sum; every thread gets the result. blockDim.x must be a multiple of 32.
__device__ float block_reduce(float v, float* red, bool is_max)
{
    const float neutral = is_max ? __int_as_float(0xff800000) : 0.0f;
    for (int o = 16; o > 0; o >>= 1) {
        float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();  // red may still be read by a previous reduction
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < warps ? red[lane] : neutral;
    for (int o = 16; o > 0; o >>= 1) {
        float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    return v;
}

extern "C" __global__ void attn_decoder_fp32(
    const float* __restrict__ memory,     // (N, W, D)
    const int* __restrict__ widths,       // (N,)
    const float* __restrict__ holistic,   // (N, D)
    const float* __restrict__ embed,      // (V, E)
    const float* __restrict__ init_w,     // (Hd, D)
    const float* __restrict__ init_b,     // (Hd,)
    const float* __restrict__ mem_w,      // (A, D)
    const float* __restrict__ mem_b,      // (A,)
    const float* __restrict__ hid_w,      // (A, Hd)
    const float* __restrict__ score_w,    // (A,)
    const float* __restrict__ w_ih,       // (4Hd, E + D), gates i, f, g, o
    const float* __restrict__ w_hh,       // (4Hd, Hd)
    const float* __restrict__ b_ih,       // (4Hd,)
    const float* __restrict__ b_hh,       // (4Hd,)
    const float* __restrict__ out_w,      // (C, Hd + D)
    const float* __restrict__ out_b,      // (C,)
    int* __restrict__ tokens,             // (N, T)
    float* __restrict__ probs,            // (N, T)
    float* __restrict__ keys_ws,          // workspace (N, W, A)
    int n, int W, int D, int E, int Hd, int A, int C, int max_len, int start_token)
{
    const int region = blockIdx.x;
    if (region >= n) return;
    extern __shared__ float smem[];
    float* h = smem;
    float* c = h + Hd;
    float* ctx = c + Hd;
    float* hp = ctx + D;
    float* e = hp + A;
    float* gates = e + W;
    float* logits = gates + 4 * Hd;
    float* red = logits + C;
    __shared__ int s_token, s_ended;

    const int tid = threadIdx.x, nt = blockDim.x;
    const float* mem = memory + (long long)region * W * D;
    float* keys = keys_ws + (long long)region * W * A;
    const int width = min(max(widths[region], 0), W);

    // Masked columns score MASK_FILL whatever their key: their keys are never computed.
    for (int idx = tid; idx < width * A; idx += nt) {
        const int w = idx / A, a = idx % A;
        float s = mem_b[a];
        for (int d = 0; d < D; ++d) s += mem_w[a * D + d] * mem[w * D + d];
        keys[idx] = s;
    }
    for (int k = tid; k < Hd; k += nt) {
        float s = init_b[k];
        for (int d = 0; d < D; ++d) s += init_w[k * D + d] * holistic[(long long)region * D + d];
        h[k] = tanhf(s);
        c[k] = 0.0f;
    }
    if (tid == 0) {
        s_token = start_token;
        s_ended = 0;
    }
    __syncthreads();

    int t = 0;
    while (t < max_len) {
        for (int a = tid; a < A; a += nt) {
            float s = 0.0f;
            for (int k = 0; k < Hd; ++k) s += hid_w[a * Hd + k] * h[k];
            hp[a] = s;
        }
        __syncthreads();
        float m = __int_as_float(0xff800000);
        for (int w = tid; w < W; w += nt) {
            float s = MASK_FILL;
            if (w < width) {
                s = 0.0f;
                for (int a = 0; a < A; ++a) s += score_w[a] * tanhf(keys[w * A + a] + hp[a]);
            }
            e[w] = s;
            m = fmaxf(m, s);
        }
        m = block_reduce(m, red, true);
        float sum = 0.0f;
        for (int w = tid; w < W; w += nt) {
            const float x = expf(e[w] - m);
            e[w] = x;
            sum += x;
        }
        sum = block_reduce(sum, red, false);  // its barriers also publish e
        const float inv = 1.0f / sum;
        for (int d = tid; d < D; d += nt) {
            float s = 0.0f;
            for (int w = 0; w < W; ++w) s += e[w] * inv * mem[w * D + d];
            ctx[d] = s;
        }
        __syncthreads();
        const float* emb = embed + (long long)s_token * E;
        for (int g = tid; g < 4 * Hd; g += nt) {
            const float* wi = w_ih + (long long)g * (E + D);
            const float* wh = w_hh + (long long)g * Hd;
            float s = b_ih[g] + b_hh[g];
            for (int k = 0; k < E; ++k) s += wi[k] * emb[k];
            for (int d = 0; d < D; ++d) s += wi[E + d] * ctx[d];
            for (int k = 0; k < Hd; ++k) s += wh[k] * h[k];
            gates[g] = s;
        }
        __syncthreads();
        for (int k = tid; k < Hd; k += nt) {
            const float ig = sigmoidf_(gates[k]), fg = sigmoidf_(gates[Hd + k]);
            const float gg = tanhf(gates[2 * Hd + k]), og = sigmoidf_(gates[3 * Hd + k]);
            const float cn = fg * c[k] + ig * gg;
            c[k] = cn;
            h[k] = og * tanhf(cn);
        }
        __syncthreads();
        for (int j = tid; j < C; j += nt) {
            const float* wo = out_w + (long long)j * (Hd + D);
            float s = out_b[j];
            for (int k = 0; k < Hd; ++k) s += wo[k] * h[k];
            for (int d = 0; d < D; ++d) s += wo[Hd + d] * ctx[d];
            logits[j] = s;
        }
        __syncthreads();
        if (tid == 0) {
            int best = 0;
            float lm = logits[0];
            for (int j = 1; j < C; ++j)
                if (logits[j] > lm) { lm = logits[j]; best = j; }  // first maximum, like argmax
            float z = 0.0f;
            for (int j = 0; j < C; ++j) z += expf(logits[j] - lm);
            tokens[(long long)region * max_len + t] = best;
            probs[(long long)region * max_len + t] = 1.0f / z;
            s_token = best;
            s_ended = best == 0;
        }
        __syncthreads();
        ++t;
        if (s_ended) break;
    }
    for (int k = t + tid; k < max_len; k += nt) {
        tokens[(long long)region * max_len + k] = 0;
        probs[(long long)region * max_len + k] = 1.0f;
    }
}
