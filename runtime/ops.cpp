#include "runtime/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "quant/ef_format.h"
#include "quant/half.h"
#include "runtime/kernels/kernels.h"
#include "runtime/thread_pool.h"

namespace ef::rt {

// ---- elementwise -------------------------------------------------------------------------------

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float silu(float x) { return x / (1.0f + std::exp(-x)); }
float softplus(float x) { return x > 20.0f ? x : std::log(1.0f + std::exp(x)); }

void softmax(std::span<float> x) {
    if (x.empty()) return;
    const float mx = *std::max_element(x.begin(), x.end());
    double sum = 0.0;
    for (float& v : x) {
        v = std::exp(v - mx);
        sum += v;
    }
    const float inv = float(1.0 / sum);
    for (float& v : x) v *= inv;
}

void swiglu(std::span<float> out, std::span<const float> gate, std::span<const float> up) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = silu(gate[i]) * up[i];
}

// ---- normalization -----------------------------------------------------------------------------

void rmsnorm(std::span<float> out, std::span<const float> x, std::span<const float> w, float eps) {
    const size_t n = x.size();
    double ss = 0.0;
    for (float v : x) ss += double(v * v);
    const float mean = float(ss / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);  // eps inside the root, added to the mean
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void rmsnorm_groups(std::span<float> out, std::span<const float> x, std::span<const float> w, int64_t groups, float eps) {
    const size_t g = size_t(x.size() / size_t(groups));
    for (size_t i = 0; i < size_t(groups); ++i)
        rmsnorm(out.subspan(i * g, g), x.subspan(i * g, g), w.subspan(i * g, g), eps);
}

// ---- matrix-vector product ---------------------------------------------------------------------

namespace {

// Q8_0 / Q8_1 as ggml's x86 CPU code quantizes activations: d = amax / 127 stored as f16,
// q = round-half-even(x * 127 / amax). Returns the dequantized values f16(d) * q.
void round_q8_0(std::span<const float> x, std::span<float> out) {
    constexpr size_t kBlock = 32;
    for (size_t b = 0; b < x.size(); b += kBlock) {
        float amax = 0.0f;
        for (size_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[b + j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const float dh = f16_to_f32(f32_to_f16(d));
        for (size_t j = 0; j < kBlock; ++j) out[b + j] = dh * std::nearbyint(x[b + j] * id);
    }
}

// Q8_K (the partner of every k-quant): the signed value of largest magnitude maps to -127,
// d = 1 / iscale kept as f32, q clamped to 127.
void round_q8_k(std::span<const float> x, std::span<float> out) {
    constexpr size_t kBlock = 256;
    for (size_t b = 0; b < x.size(); b += kBlock) {
        float amax = 0.0f, mx = 0.0f;
        for (size_t j = 0; j < kBlock; ++j) {
            const float a = std::fabs(x[b + j]);
            if (a > amax) {
                amax = a;
                mx = x[b + j];
            }
        }
        if (amax == 0.0f) {
            for (size_t j = 0; j < kBlock; ++j) out[b + j] = 0.0f;
            continue;
        }
        const float iscale = -127.0f / mx;
        const float d = 1.0f / iscale;
        for (size_t j = 0; j < kBlock; ++j) out[b + j] = d * std::min(127.0f, std::nearbyint(iscale * x[b + j]));
    }
}

}  // namespace

std::vector<float> round_activations(DType weight_type, std::span<const float> x) {
    std::vector<float> out(x.begin(), x.end());
    switch (weight_type) {
        case DType::F16:
            for (float& v : out) v = f16_to_f32(f32_to_f16(v));
            break;
        case DType::BF16:
            for (float& v : out) v = bf16_to_f32(f32_to_bf16(v));
            break;
        case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
            if (x.size() % 32 == 0) round_q8_0(x, out);
            break;
        case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::Q8_K:
            if (x.size() % 256 == 0) round_q8_k(x, out);
            break;
        default:
            // The EdgeFusion blocks meet Q8_0 activations (B is a multiple of 32).
            if (is_ef_dtype(weight_type) && x.size() % 32 == 0) round_q8_0(x, out);
            break;  // F32 (and the rest): ggml multiplies plain floats
    }
    return out;
}

static Status check_rows(const Tensor& w, int64_t row0, int64_t nrows, std::string_view what) {
    if (!type_traits(w.dtype).to_float)
        return make_error("tensor '" + w.name + "': dtype " + std::string(dtype_name(w.dtype)) + " cannot be read as float");
    if (row0 < 0 || nrows < 0 || row0 + nrows > w.rows())
        return make_error("tensor '" + w.name + "' " + shape_to_string(w.shape) + ": " + std::string(what) + " rows [" +
                          std::to_string(row0) + ", " + std::to_string(row0 + nrows) + ") out of range");
    return {};
}

namespace {

// Rows are split across threads only when the slice holds at least this many weight bytes, and
// each claimed chunk holds about kChunkBytes: below that, handing work to a second core costs
// more than it saves. From tests/bench/bench_kernels.cpp's "row split" table on the 2-core x86
// machine (quiet): Q8_0 gains 1.36x at 32 KiB and 1.5-1.8x from 64 KiB; F32 breaks even at 32
// KiB, 1.28x at 64 KiB, 1.5-1.9x from 128 KiB. Whether a split pays right now (other programs
// on the cores) is then the pool's measured choice (thread_pool.h).
// Chunks are at least kChunkBytes and otherwise a quarter of each thread's share: every claimed
// chunk costs an atomic claim and a completion count bounced between the cores, and on the
// llama d1024 Q8_0 model 16 KiB chunks made 2-thread decode 40 % slower than one thread, while
// share/4 chunks made it 1.3x faster (Q8_0 105 -> 135-145 tokens/s, F16 61 -> 79-85).
constexpr uint64_t kMinSplitBytes = 64 * 1024;
constexpr uint64_t kChunkBytes = 16 * 1024;
constexpr uint64_t kChunksPerThread = 4;

// Runs rows(begin, end) over [0, nrows), on the pool when the matrix is big enough.
template <class F>
void for_rows(ThreadPool* pool, int64_t nrows, uint64_t row_bytes, F&& rows) {
    const uint64_t total = uint64_t(nrows) * row_bytes;
    if (!pool || pool->threads() < 2 || total < kMinSplitBytes) {
        rows(int64_t(0), nrows);
        return;
    }
    const uint64_t chunk_bytes = std::max(kChunkBytes, total / (kChunksPerThread * uint64_t(pool->threads())));
    const int64_t chunk = std::max<int64_t>(1, int64_t(chunk_bytes / std::max<uint64_t>(1, row_bytes)));
    pool->parallel_for(nrows, chunk, rows);
}

}  // namespace

Status matvec(std::span<float> y, const Tensor& w, std::span<const float> x, ActRounding rounding, int64_t row0, int64_t nrows) {
    return matvec(y, w, x, MatvecOptions{rounding, Kernels::Fast, nullptr}, row0, nrows);
}

Status matvec(std::span<float> y, const Tensor& w, std::span<const float> x, const MatvecOptions& opt, int64_t row0,
              int64_t nrows) {
    if (nrows < 0) nrows = w.rows() - row0;
    EF_TRY_STATUS(check_rows(w, row0, nrows, "matvec"));
    const int64_t cols = w.row_length();
    if (int64_t(x.size()) != cols || int64_t(y.size()) != nrows)
        return make_error("matvec with '" + w.name + "' " + shape_to_string(w.shape) + ": input has " + std::to_string(x.size()) +
                          " values, output " + std::to_string(y.size()) + " (expected " + std::to_string(cols) + ", " +
                          std::to_string(nrows) + ")");
    const TypeTraits& tt = type_traits(w.dtype);
    const uint64_t row_bytes = uint64_t(cols / tt.block_size) * uint64_t(tt.type_size);
    const std::byte* base = w.data.data() + uint64_t(row0) * row_bytes;

    const kernels::KernelTraits* kt = kernels::kernel_traits(w.dtype);
    const bool fast = opt.kernels != Kernels::Reference && kt &&
                      (opt.rounding == ActRounding::Ggml || w.dtype == DType::F32);
    if (fast) {
        // The activations in the kernel's partner type, once for all rows.
        std::vector<uint8_t> act(kernels::act_bytes(kt->act, cols));
        kernels::quantize_act(kt->act, x.data(), act.data(), cols);
        const kernels::VecDotFn dot = opt.kernels == Kernels::Scalar ? kt->scalar : kt->best;
        for_rows(opt.pool, nrows, row_bytes, [&](int64_t b, int64_t e) {
            for (int64_t r = b; r < e; ++r) y[size_t(r)] = dot(cols, base + uint64_t(r) * row_bytes, act.data());
        });
        return {};
    }

    const std::vector<float> xr = opt.rounding == ActRounding::Ggml ? round_activations(w.dtype, x) : std::vector<float>(x.begin(), x.end());
    // Q4_1 / Q5_1 meet Q8_1 activations, whose block carries s = f16(d * sum(q)) with the unrounded
    // d, and ggml adds m_x * s rather than m_x * sum(x_rounded): per block the difference
    // m_x * (s - f16(d) * sum(q)) is added below (both block types start with f16 d, f16 m).
    std::vector<double> s_fix;
    if (opt.rounding == ActRounding::Ggml && (w.dtype == DType::Q4_1 || w.dtype == DType::Q5_1) && cols % 32 == 0) {
        for (int64_t b0 = 0; b0 < cols; b0 += 32) {
            float amax = 0.0f;
            for (int64_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(b0 + j)]));
            const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
            int sum = 0;
            for (int64_t j = 0; j < 32; ++j) sum += int(std::nearbyint(x[size_t(b0 + j)] * id));
            const float s = f16_to_f32(f32_to_f16(d * float(sum)));
            s_fix.push_back(double(s) - double(f16_to_f32(f32_to_f16(d))) * double(sum));
        }
    }
    for_rows(opt.pool, nrows, row_bytes, [&](int64_t b, int64_t e) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = b; r < e; ++r) {
            tt.to_float(base + uint64_t(r) * row_bytes, row.data(), cols);
            // Products of two floats are exact in double, so only the sum order rounds.
            double acc = 0.0;
            for (int64_t j = 0; j < cols; ++j) acc += double(row[size_t(j)]) * double(xr[size_t(j)]);
            const std::byte* blocks = base + uint64_t(r) * row_bytes;
            for (size_t k = 0; k < s_fix.size(); ++k) {
                uint16_t m = 0;
                std::memcpy(&m, blocks + k * uint64_t(tt.type_size) + 2, sizeof m);
                acc += double(f16_to_f32(m)) * s_fix[k];
            }
            y[size_t(r)] = float(acc);
        }
    });
    return {};
}

Status tensor_row(std::span<float> out, const Tensor& w, int64_t row) {
    EF_TRY_STATUS(check_rows(w, row, 1, "lookup"));
    if (int64_t(out.size()) != w.row_length())
        return make_error("row of '" + w.name + "' has " + std::to_string(w.row_length()) + " values, buffer " + std::to_string(out.size()));
    const TypeTraits& tt = type_traits(w.dtype);
    const uint64_t row_bytes = uint64_t(w.row_length() / tt.block_size) * uint64_t(tt.type_size);
    tt.to_float(w.data.data() + uint64_t(row) * row_bytes, out.data(), w.row_length());
    return {};
}

// ---- attention ---------------------------------------------------------------------------------

void rope(std::span<float> x, int64_t n_heads, int64_t head_dim, int64_t rope_dim, int64_t pos, float theta) {
    // The angle of pair i is pos * theta^(-2i/rope_dim), built by repeated multiplication in float
    // as ggml does, so the angles agree to the last bit.
    const float step = std::pow(theta, -2.0f / float(rope_dim));
    for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x.data() + h * head_dim;
        float angle = float(pos);
        for (int64_t i = 0; i + 1 < rope_dim; i += 2) {
            const float c = std::cos(angle), s = std::sin(angle);
            const float a = v[i], b = v[i + 1];
            v[i] = a * c - b * s;
            v[i + 1] = a * s + b * c;
            angle *= step;
        }
    }
}

void attention(std::span<float> out, std::span<const float> q, std::span<const float> k_cache,
               std::span<const float> v_cache, int64_t n_pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               float scale) {
    const int64_t group = n_heads / n_kv_heads;
    const int64_t kv_stride = n_kv_heads * head_dim;  // one cached position
    std::vector<float> p(static_cast<size_t>(n_pos));
    for (int64_t h = 0; h < n_heads; ++h) {
        const float* qh = q.data() + h * head_dim;
        const int64_t kvh = h / group;
        for (int64_t t = 0; t < n_pos; ++t) {
            const float* k = k_cache.data() + t * kv_stride + kvh * head_dim;
            double dot = 0.0;
            for (int64_t i = 0; i < head_dim; ++i) dot += double(qh[i]) * double(k[i]);
            p[size_t(t)] = float(dot) * scale;
        }
        softmax(p);
        float* o = out.data() + h * head_dim;
        for (int64_t i = 0; i < head_dim; ++i) {
            double acc = 0.0;
            for (int64_t t = 0; t < n_pos; ++t) acc += double(p[size_t(t)]) * double(v_cache[size_t(t * kv_stride + kvh * head_dim + i)]);
            o[i] = float(acc);
        }
    }
}

// ---- state-space pieces ------------------------------------------------------------------------

void conv1d_step(std::span<float> out, std::span<float> state, std::span<const float> x, std::span<const float> w,
                 std::span<const float> bias, int64_t channels, int64_t k) {
    const int64_t ks = k - 1;  // state columns
    for (int64_t c = 0; c < channels; ++c) {
        float* s = state.data() + c * ks;
        const float* wc = w.data() + c * k;
        float acc = 0.0f;
        for (int64_t j = 0; j < ks; ++j) acc += s[j] * wc[j];
        acc += x[size_t(c)] * wc[ks];
        out[size_t(c)] = acc + (bias.empty() ? 0.0f : bias[size_t(c)]);
        for (int64_t j = 0; j + 1 < ks; ++j) s[j] = s[j + 1];
        if (ks > 0) s[ks - 1] = x[size_t(c)];
    }
}

void selective_scan_step(std::span<float> y, std::span<float> h, std::span<const float> x, std::span<const float> dt,
                         std::span<const float> A, std::span<const float> B, std::span<const float> C,
                         std::span<const float> D, int64_t channels, int64_t d_state) {
    for (int64_t c = 0; c < channels; ++c) {
        const float dts = softplus(dt[size_t(c)]);
        const float xdt = x[size_t(c)] * dts;
        float* hc = h.data() + c * d_state;
        const float* Ac = A.data() + c * d_state;
        float acc = 0.0f;
        for (int64_t n = 0; n < d_state; ++n) {
            hc[n] = hc[n] * std::exp(dts * Ac[n]) + B[size_t(n)] * xdt;
            acc += hc[n] * C[size_t(n)];
        }
        y[size_t(c)] = acc + x[size_t(c)] * D[size_t(c)];
    }
}

void ssd_step(std::span<float> y, std::span<float> S, std::span<const float> x, std::span<const float> dt,
              std::span<const float> A, std::span<const float> B, std::span<const float> C, std::span<const float> D,
              int64_t n_heads, int64_t head_dim, int64_t n_groups, int64_t d_state) {
    const int64_t heads_per_group = n_heads / n_groups;
    for (int64_t h = 0; h < n_heads; ++h) {
        const float dts = softplus(dt[size_t(h)]);
        const float decay = std::exp(dts * A[size_t(h)]);
        const int64_t g = h / heads_per_group;
        const float* Bg = B.data() + g * d_state;
        const float* Cg = C.data() + g * d_state;
        for (int64_t p = 0; p < head_dim; ++p) {
            const int64_t i = h * head_dim + p;
            const float xdt = x[size_t(i)] * dts;
            float* s = S.data() + i * d_state;
            float acc = 0.0f;
            for (int64_t n = 0; n < d_state; ++n) {
                s[n] = s[n] * decay + Bg[n] * xdt;
                acc += s[n] * Cg[n];
            }
            y[size_t(i)] = acc + x[size_t(i)] * D[size_t(h)];
        }
    }
}

}  // namespace ef::rt
