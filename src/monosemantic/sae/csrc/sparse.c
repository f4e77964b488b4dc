/* CPU sparse kernels of monosemantic's SAE training (compiled on first use by monosemantic/sae/native.py and
   registered as torch operators by monosemantic/sae/ops.py).

   Every kernel is deterministic (fixed loop order, each output written by one thread), which exact resume relies
   on. Index arguments are int64 and are bound-checked by the Python side before any kernel runs. */

#include <stdint.h>
#include <string.h>
#include <omp.h>
#include <math.h>

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } c; c.u = ((uint32_t)h) << 16; return c.f;
}

/* min-heap of (value, index) on the k kept entries; root = smallest kept value */
static inline void sift_down(float *hv, int64_t *hi, int k, int pos) {
    for (;;) {
        int l = 2 * pos + 1, r = l + 1, m = pos;
        if (l < k && hv[l] < hv[m]) m = l;
        if (r < k && hv[r] < hv[m]) m = r;
        if (m == pos) return;
        float tv = hv[pos]; hv[pos] = hv[m]; hv[m] = tv;
        int64_t ti = hi[pos]; hi[pos] = hi[m]; hi[m] = ti;
        pos = m;
    }
}

#include <stdlib.h>

static inline float load_val(const void *pre, int is_bf16, int64_t off) {
    return is_bf16 ? bf16_to_f32(((const uint16_t *)pre)[off]) : ((const float *)pre)[off];
}

static inline void heap_offer(float *hv, int64_t *hi, int k, int *filled, float v, int64_t j) {
    if (*filled < k) {
        hv[*filled] = v; hi[*filled] = j; (*filled)++;
        if (*filled == k) for (int p = k / 2 - 1; p >= 0; p--) sift_down(hv, hi, k, p);
    } else if (v > hv[0]) {
        hv[0] = v; hi[0] = j; sift_down(hv, hi, k, 0);
    }
}

/* Order-preserving map float -> uint32 (no NaN expected: inputs are checked upstream). */
static inline uint32_t fkey(float f) {
    union { float f; uint32_t u; } c; c.f = f;
    return (c.u & 0x80000000u) ? ~c.u : (c.u | 0x80000000u);
}

/* Key of the k-th largest of keys[0..n) (1 <= k <= n): bisection on the key value; each probe is one
   vectorised counting pass, so there are no data-dependent branches (quickselect mispredicts too much). */
static uint32_t kth_largest_key(const uint32_t *restrict keys, int64_t n, int64_t k) {
    uint64_t lo = 0, hi = 0xFFFFFFFFu;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        uint32_t m = (uint32_t)mid;
        int64_t cnt = 0;
        #pragma omp simd reduction(+:cnt)
        for (int64_t j = 0; j < n; j++) cnt += keys[j] >= m;
        if (cnt >= k) lo = mid; else hi = mid - 1;
    }
    return (uint32_t)lo;
}

/* colmax = (first ? v : max(colmax, v)) with v = stripe (+ bias); one branch-free loop per case */
#define MAXIN(c, v) ((v) > (c) ? (v) : (c))
static void stripe_f32(const float *restrict p, const float *restrict bias, float *restrict colmax, int64_t G,
                       int first) {
    if (first && bias) { for (int64_t j = 0; j < G; j++) colmax[j] = p[j] + bias[j]; }
    else if (first) { for (int64_t j = 0; j < G; j++) colmax[j] = p[j]; }
    else if (bias) { for (int64_t j = 0; j < G; j++) colmax[j] = MAXIN(colmax[j], p[j] + bias[j]); }
    else { for (int64_t j = 0; j < G; j++) colmax[j] = MAXIN(colmax[j], p[j]); }
}

static void stripe_bf16(const uint16_t *restrict p, const float *restrict bias, float *restrict colmax, int64_t G,
                        int first) {
    if (first && bias) { for (int64_t j = 0; j < G; j++) colmax[j] = bf16_to_f32(p[j]) + bias[j]; }
    else if (first) { for (int64_t j = 0; j < G; j++) colmax[j] = bf16_to_f32(p[j]); }
    else if (bias) { for (int64_t j = 0; j < G; j++) colmax[j] = MAXIN(colmax[j], bf16_to_f32(p[j]) + bias[j]); }
    else { for (int64_t j = 0; j < G; j++) colmax[j] = MAXIN(colmax[j], bf16_to_f32(p[j])); }
}

#define R 16
/* Row-wise top-k of (pre + bias) for a [B, F] matrix in float32 (is_bf16 = 0) or bfloat16 (is_bf16 = 1).
   View the first R*G entries of a row as R stripes of G columns and take the column maxima (one vectorised
   pass). The k-th largest column maximum is a lower bound on the k-th largest entry, so every entry of the
   top k lies in one of the k columns with the largest maxima (or in the < R tail entries): only those
   k*R + tail candidates go through the heap. */
void topk_rows(const void *pre, int is_bf16, const float *bias, int64_t B, int64_t F, int64_t ld, int k,
               float *out_vals, int64_t *out_idx, int nthreads) {
    int64_t G = F / R;
    #pragma omp parallel num_threads(nthreads)
    {
        float *colmax = (float *)malloc(sizeof(float) * (G > 0 ? G : 1));
        /* survivors: at most every entry of the columns tied at or above tau0, plus the tail */
        float *sv = (float *)malloc(sizeof(float) * (F + 1));
        int64_t *si = (int64_t *)malloc(sizeof(int64_t) * (F + 1));
        uint32_t *sk = (uint32_t *)malloc(sizeof(uint32_t) * (F + 1));
        uint32_t *work = (uint32_t *)malloc(sizeof(uint32_t) * (G > 0 ? G : 1));
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            float *hv = out_vals + b * k;
            int64_t *hi = out_idx + b * k;
            int filled = 0;
            int64_t base = b * ld;
            if (G >= k) {
                for (int r = 0; r < R; r++) {
                    int64_t o = r * G;
                    const float *bo = bias ? bias + o : NULL;
                    if (is_bf16) stripe_bf16((const uint16_t *)pre + base + o, bo, colmax, G, r == 0);
                    else stripe_f32((const float *)pre + base + o, bo, colmax, G, r == 0);
                }
                /* tau0 = k-th largest column maximum (a lower bound on the k-th largest entry) */
                for (int64_t j = 0; j < G; j++) work[j] = fkey(colmax[j]);
                uint32_t tau0 = kth_largest_key(work, G, k);
                int64_t S = 0;
                for (int64_t j = 0; j < G; j++) {
                    if (work[j] < tau0) continue;
                    for (int r = 0; r < R; r++) {
                        int64_t col = r * G + j;
                        float v = load_val(pre, is_bf16, base + col) + (bias ? bias[col] : 0.f);
                        uint32_t key = fkey(v);
                        if (key >= tau0) { sv[S] = v; sk[S] = key; si[S] = col; S++; }
                    }
                }
                for (int64_t col = R * G; col < F; col++) {
                    float v = load_val(pre, is_bf16, base + col) + (bias ? bias[col] : 0.f);
                    uint32_t key = fkey(v);
                    if (key >= tau0) { sv[S] = v; sk[S] = key; si[S] = col; S++; }
                }
                /* exactly the top k of the S >= k survivors: everything above the k-th key, then ties */
                uint32_t tau = kth_largest_key(sk, S, k);
                for (int64_t c = 0; c < S && filled < k; c++)
                    if (sk[c] > tau) { hv[filled] = sv[c]; hi[filled] = si[c]; filled++; }
                for (int64_t c = 0; c < S && filled < k; c++)
                    if (sk[c] == tau) { hv[filled] = sv[c]; hi[filled] = si[c]; filled++; }
            } else {
                for (int64_t col = 0; col < F; col++)
                    heap_offer(hv, hi, k, &filled, load_val(pre, is_bf16, base + col) + (bias ? bias[col] : 0.f), col);
            }
        }
        free(colmax); free(sv); free(si); free(sk); free(work);
    }
}

/* out[b, s] = <G[b, :], W[idx[b, s], :]>  (W rows of length d) */
void gather_dot(const int64_t *idx, int64_t B, int k, const float *W, const float *G, int64_t d, float *out,
                int nthreads) {
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t b = 0; b < B; b++) {
        const float *g = G + b * d;
        for (int s = 0; s < k; s++) {
            const float *w = W + idx[b * k + s] * d;
            float acc = 0.f;
            #pragma omp simd reduction(+:acc)
            for (int64_t t = 0; t < d; t++) acc += g[t] * w[t];
            out[b * k + s] = acc;
        }
    }
}

/* out[b, :] = sum_s vals[b, s] * W[idx[b, s], :] */
void gather_sum(const int64_t *idx, const float *vals, int64_t B, int k, const float *W, int64_t d, float *out,
                int nthreads) {
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t b = 0; b < B; b++) {
        float *o = out + b * d;
        memset(o, 0, sizeof(float) * d);
        for (int s = 0; s < k; s++) {
            float v = vals[b * k + s];
            if (v == 0.f) continue;
            const float *w = W + idx[b * k + s] * d;
            #pragma omp simd
            for (int64_t t = 0; t < d; t++) o[t] += v * w[t];
        }
    }
}

/* Unit-norm decoder: remove from each gradient row its component along the row (d = w / (|w| + 1e-6));
   returns the squared norm of the projected gradient (for clipping). */
double project_rows(const float *W, float *G, int64_t F, int64_t d, int nthreads) {
    double total = 0.0;
    #pragma omp parallel for schedule(static) reduction(+:total) num_threads(nthreads)
    for (int64_t j = 0; j < F; j++) {
        const float *w = W + j * d;
        float *g = G + j * d;
        float nn = 0.f, gw = 0.f;
        for (int64_t t = 0; t < d; t++) { nn += w[t] * w[t]; gw += g[t] * w[t]; }
        float n = sqrtf(nn) + 1e-6f;
        float c = gw / (n * n);
        float s = 0.f;
        for (int64_t t = 0; t < d; t++) { g[t] -= c * w[t]; s += g[t] * g[t]; }
        total += s;
    }
    return total;
}

void renorm_rows(float *W, int64_t F, int64_t d, float eps, int nthreads) {
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t j = 0; j < F; j++) {
        float *w = W + j * d;
        float nn = 0.f;
        for (int64_t t = 0; t < d; t++) nn += w[t] * w[t];
        float inv = 1.f / (sqrtf(nn) + eps);
        for (int64_t t = 0; t < d; t++) w[t] *= inv;
    }
}

/* out[j, :] = sum over (b, s) with idx[b, s] == j of w[b, s] * X[b, :];  out is [F, d], zeroed here.
   Each thread owns a contiguous range of j, so every output row has one writer and a fixed summation order. */
void scatter_rows(const int64_t *idx, const float *w, int64_t B, int k, const float *X, int64_t d, int64_t F,
                  float *out, int nthreads) {
    #pragma omp parallel num_threads(nthreads)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t lo = F * t / nt, hi = F * (t + 1) / nt;
        memset(out + lo * d, 0, sizeof(float) * (hi - lo) * d);
        for (int64_t b = 0; b < B; b++) {
            const float *x = X + b * d;
            for (int s = 0; s < k; s++) {
                int64_t j = idx[b * k + s];
                float v = w[b * k + s];
                if (j < lo || j >= hi || v == 0.f) continue;
                float *o = out + j * d;
                #pragma omp simd
                for (int64_t u = 0; u < d; u++) o[u] += v * x[u];
            }
        }
    }
}
/* Triplet kernels (BatchTopK / Matryoshka): entry s is (orow[s], col[s], val[s]) with any number per row.
   Every output row has one owning thread that scans the entries in order: fixed summation order. */

/* out[r, :] = sum over s with orow[s] == r of val[s] * W[col[s], :];  out is [n_out, d], zeroed here */
void tri_gather_sum(const int64_t *orow, const int64_t *col, const float *val, int64_t n, const float *W,
                    int64_t d, int64_t n_out, float *out, int nthreads) {
    #pragma omp parallel num_threads(nthreads)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t lo = n_out * t / nt, hi = n_out * (t + 1) / nt;
        memset(out + lo * d, 0, sizeof(float) * (hi - lo) * d);
        for (int64_t s = 0; s < n; s++) {
            int64_t r = orow[s];
            float v = val[s];
            if (r < lo || r >= hi || v == 0.f) continue;
            const float *w = W + col[s] * d;
            float *o = out + r * d;
            #pragma omp simd
            for (int64_t u = 0; u < d; u++) o[u] += v * w[u];
        }
    }
}

/* out[s] = <X[orow[s], :], W[col[s], :]> */
void tri_gather_dot(const int64_t *orow, const int64_t *col, int64_t n, const float *W, const float *X, int64_t d,
                    float *out, int nthreads) {
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t s = 0; s < n; s++) {
        const float *x = X + orow[s] * d, *w = W + col[s] * d;
        float acc = 0.f;
        #pragma omp simd reduction(+:acc)
        for (int64_t u = 0; u < d; u++) acc += x[u] * w[u];
        out[s] = acc;
    }
}

/* out[j, :] = sum over s with col[s] == j of w[s] * X[orow[s], :];  out is [F, d], zeroed here */
void tri_scatter_rows(const int64_t *orow, const int64_t *col, const float *w, int64_t n, const float *X, int64_t d,
                      int64_t F, float *out, int nthreads) {
    #pragma omp parallel num_threads(nthreads)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t lo = F * t / nt, hi = F * (t + 1) / nt;
        memset(out + lo * d, 0, sizeof(float) * (hi - lo) * d);
        for (int64_t s = 0; s < n; s++) {
            int64_t j = col[s];
            float v = w[s];
            if (j < lo || j >= hi || v == 0.f) continue;
            const float *x = X + orow[s] * d;
            float *o = out + j * d;
            #pragma omp simd
            for (int64_t u = 0; u < d; u++) o[u] += v * x[u];
        }
    }
}

/* Number of entries of idx[0..n) outside [0, bound): one branch-free pass (negative values wrap to huge unsigned
   ones), so every index can be checked before a kernel trusts it. */
int64_t count_out_of_range(const int64_t *idx, int64_t n, int64_t bound) {
    int64_t bad = 0;
    #pragma omp simd reduction(+:bad)
    for (int64_t i = 0; i < n; i++) bad += (uint64_t)idx[i] >= (uint64_t)bound;
    return bad;
}
