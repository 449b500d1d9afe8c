#include "runtime/ops_seq.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/ops.h"
#include "runtime/thread_pool.h"

namespace ef::rt {

namespace {

// Runs fn(begin, end) over [0, n) on the pool, one index per claim, when there is one and the
// job holds about `work` multiply-adds or more (below that a second thread costs more than it saves).
template <class F>
void for_each_index(ThreadPool* pool, int64_t n, double work, F&& fn) {
    if (!pool || pool->threads() < 2 || n < 2 || work < 65536.0) {
        fn(int64_t(0), n);
        return;
    }
    pool->parallel_for(n, 1, fn);
}

}  // namespace

void rope_seq(std::span<float> x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t rope_dim, int64_t pos0, float theta) {
    const size_t row = size_t(n_heads * head_dim);
    for (int64_t t = 0; t < T; ++t) rope(x.subspan(size_t(t) * row, row), n_heads, head_dim, rope_dim, pos0 + t, theta);
}

void attention_seq(std::span<float> out, std::span<const float> q, std::span<const float> k_cache,
                   std::span<const float> v_cache, int64_t n_past, int64_t T, int64_t n_heads, int64_t n_kv_heads,
                   int64_t head_dim, float scale, ThreadPool* pool) {
    const int64_t group = n_heads / n_kv_heads;
    const int64_t kv_stride = n_kv_heads * head_dim;  // one cached position
    const int64_t q_stride = n_heads * head_dim;      // one query position
    const double work = 2.0 * double(T) * double(n_past + T) * double(q_stride);
    for_each_index(pool, T, work, [&](int64_t t0, int64_t t1) {
        std::vector<float> p(static_cast<size_t>(n_past + t1));
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t n_pos = n_past + t + 1;  // causal: this query and everything before it
            const std::span<float> pt(p.data(), size_t(n_pos));
            for (int64_t h = 0; h < n_heads; ++h) {
                const float* qh = q.data() + t * q_stride + h * head_dim;
                const int64_t kvh = h / group;
                for (int64_t s = 0; s < n_pos; ++s) {
                    const float* k = k_cache.data() + s * kv_stride + kvh * head_dim;
                    double dot = 0.0;
                    for (int64_t i = 0; i < head_dim; ++i) dot += double(qh[i]) * double(k[i]);
                    pt[size_t(s)] = float(dot) * scale;
                }
                softmax(pt);
                float* o = out.data() + t * q_stride + h * head_dim;
                for (int64_t i = 0; i < head_dim; ++i) {
                    double acc = 0.0;
                    for (int64_t s = 0; s < n_pos; ++s)
                        acc += double(pt[size_t(s)]) * double(v_cache[size_t(s * kv_stride + kvh * head_dim + i)]);
                    o[i] = float(acc);
                }
            }
        }
    });
}

void conv1d_seq(std::span<float> out, std::span<float> state, std::span<const float> x, std::span<const float> w,
                std::span<const float> bias, int64_t T, int64_t channels, int64_t k) {
    const int64_t ks = k - 1;  // state columns
    std::vector<float> hist(static_cast<size_t>(ks + T));  // one channel: [state; x_0 .. x_{T-1}]
    for (int64_t c = 0; c < channels; ++c) {
        float* s = state.data() + c * ks;
        const float* wc = w.data() + c * k;
        std::copy(s, s + ks, hist.begin());
        for (int64_t t = 0; t < T; ++t) hist[size_t(ks + t)] = x[size_t(t * channels + c)];
        const float b = bias.empty() ? 0.0f : bias[size_t(c)];
        for (int64_t t = 0; t < T; ++t) {
            // The window of step t is hist[t .. t + ks]; the same sum order as conv1d_step.
            const float* win = hist.data() + t;
            float acc = 0.0f;
            for (int64_t j = 0; j < ks; ++j) acc += win[j] * wc[j];
            acc += win[ks] * wc[ks];
            out[size_t(t * channels + c)] = acc + b;
        }
        std::copy(hist.begin() + T, hist.end(), s);  // the last ks inputs
    }
}

void selective_scan_seq(std::span<float> y, std::span<float> h, std::span<const float> x, std::span<const float> dt,
                        std::span<const float> A, std::span<const float> B, std::span<const float> C,
                        std::span<const float> D, int64_t T, int64_t channels, int64_t d_state) {
    for (int64_t c = 0; c < channels; ++c) {
        float* hc = h.data() + c * d_state;
        const float* Ac = A.data() + c * d_state;
        for (int64_t t = 0; t < T; ++t) {
            const size_t i = size_t(t * channels + c);
            const float dts = softplus(dt[i]);
            const float xdt = x[i] * dts;
            const float* Bt = B.data() + t * d_state;
            const float* Ct = C.data() + t * d_state;
            float acc = 0.0f;
            for (int64_t n = 0; n < d_state; ++n) {
                hc[n] = hc[n] * std::exp(dts * Ac[n]) + Bt[n] * xdt;
                acc += hc[n] * Ct[n];
            }
            y[i] = acc + x[i] * D[size_t(c)];
        }
    }
}

void ssd_chunked(std::span<float> y, std::span<float> S, std::span<const float> x, std::span<const float> dt,
                 std::span<const float> A, std::span<const float> B, std::span<const float> C, std::span<const float> D,
                 int64_t T, int64_t n_heads, int64_t head_dim, int64_t n_groups, int64_t d_state, int64_t chunk,
                 ThreadPool* pool) {
    const int64_t H = n_heads, P = head_dim, G = n_groups, N = d_state;
    const int64_t heads_per_group = H / G;
    const int64_t L = std::max<int64_t>(1, std::min(chunk, T));
    std::vector<float> CB(static_cast<size_t>(G * L * L));  // (G, L, L): C_t . B_s, lower triangle

    for (int64_t c0 = 0; c0 < T; c0 += L) {
        const int64_t Lc = std::min(L, T - c0);
        // B, C rows of chunk position t, group g: (c0 + t, g, :).
        auto Brow = [&](int64_t t, int64_t g) { return B.data() + ((c0 + t) * G + g) * N; };
        auto Crow = [&](int64_t t, int64_t g) { return C.data() + ((c0 + t) * G + g) * N; };
        for (int64_t g = 0; g < G; ++g)
            for (int64_t t = 0; t < Lc; ++t)
                for (int64_t s = 0; s <= t; ++s) {
                    const float *ct = Crow(t, g), *bs = Brow(s, g);
                    float acc = 0.0f;
                    for (int64_t n = 0; n < N; ++n) acc += ct[n] * bs[n];
                    CB[size_t((g * L + t) * L + s)] = acc;
                }

        const double work = double(Lc) * double(Lc + 2 * N) * double(P) * double(H);
        for_each_index(pool, H, work, [&](int64_t h0, int64_t h1) {
            std::vector<float> dts(static_cast<size_t>(Lc)), w(static_cast<size_t>(Lc)), acc(static_cast<size_t>(P));
            std::vector<double> cum(static_cast<size_t>(Lc));
            for (int64_t h = h0; h < h1; ++h) {
                const int64_t g = h / heads_per_group;
                // dt'_t and the cumulative log-decay within the chunk (summed in double).
                double run = 0.0;
                for (int64_t t = 0; t < Lc; ++t) {
                    dts[size_t(t)] = softplus(dt[size_t((c0 + t) * H + h)]);
                    run += double(dts[size_t(t)] * A[size_t(h)]);
                    cum[size_t(t)] = run;
                }
                auto xrow = [&](int64_t t) { return x.data() + (c0 + t) * H * P + h * P; };
                float* Sh = S.data() + h * P * N;  // (P, N)

                // Outputs: intra-chunk products, the incoming state's share, the D skip.
                for (int64_t t = 0; t < Lc; ++t) {
                    const float* cbt = CB.data() + (g * L + t) * L;
                    std::fill(acc.begin(), acc.end(), 0.0f);
                    for (int64_t s = 0; s <= t; ++s) {
                        const float coef = cbt[s] * std::exp(float(cum[size_t(t)] - cum[size_t(s)])) * dts[size_t(s)];
                        const float* xs = xrow(s);
                        for (int64_t p = 0; p < P; ++p) acc[size_t(p)] += coef * xs[p];
                    }
                    const float in_decay = std::exp(float(cum[size_t(t)]));
                    const float* ct = Crow(t, g);
                    const float* xt = xrow(t);
                    float* yt = y.data() + (c0 + t) * H * P + h * P;
                    for (int64_t p = 0; p < P; ++p) {
                        const float* sp = Sh + p * N;
                        float cs = 0.0f;
                        for (int64_t n = 0; n < N; ++n) cs += ct[n] * sp[n];
                        yt[p] = acc[size_t(p)] + in_decay * cs + D[size_t(h)] * xt[p];
                    }
                }

                // The state handed to the next chunk.
                const double last = cum[size_t(Lc - 1)];
                const float out_decay = std::exp(float(last));
                for (int64_t s = 0; s < Lc; ++s) w[size_t(s)] = std::exp(float(last - cum[size_t(s)])) * dts[size_t(s)];
                for (int64_t p = 0; p < P; ++p) {
                    float* sp = Sh + p * N;
                    for (int64_t n = 0; n < N; ++n) sp[n] *= out_decay;
                    for (int64_t s = 0; s < Lc; ++s) {
                        const float coef = w[size_t(s)] * xrow(s)[p];
                        const float* bs = Brow(s, g);
                        for (int64_t n = 0; n < N; ++n) sp[n] += coef * bs[n];
                    }
                }
            }
        });
    }
}

}  // namespace ef::rt
