#include "runtime/kernels/kernels.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "quant/ggml_blocks.h"
#include "quant/half.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/vec_dot_impl.h"

namespace ef::rt::kernels {

namespace {

constexpr size_t kIsas = size_t(Isa::Count);

// One row per weight type: the kernel written for each ISA (nullptr: none).
struct Row {
    DType weight, act;
    std::array<VecDotFn, kIsas> by_isa;
};

#if defined(__x86_64__)
#define EF_X86(f) f
#else
#define EF_X86(f) nullptr
#endif
#if defined(__aarch64__)
#define EF_NEON(f) f
#else
#define EF_NEON(f) nullptr
#endif

// Columns: Scalar, Avx2, Avx512, Neon.
const Row kRows[] = {
    {DType::F32, DType::F32, {scalar::vec_dot_f32, EF_X86(avx2::vec_dot_f32), EF_X86(avx512::vec_dot_f32), EF_NEON(neon::vec_dot_f32)}},
    {DType::F16, DType::F16, {scalar::vec_dot_f16, EF_X86(avx2::vec_dot_f16), EF_X86(avx512::vec_dot_f16), EF_NEON(neon::vec_dot_f16)}},
    {DType::BF16, DType::BF16, {scalar::vec_dot_bf16, EF_X86(avx2::vec_dot_bf16), EF_X86(avx512::vec_dot_bf16), EF_NEON(neon::vec_dot_bf16)}},
    {DType::Q8_0, DType::Q8_0, {scalar::vec_dot_q8_0, EF_X86(avx2::vec_dot_q8_0), EF_X86(avx512::vec_dot_q8_0), EF_NEON(neon::vec_dot_q8_0)}},
    {DType::Q4_0, DType::Q8_0, {scalar::vec_dot_q4_0, EF_X86(avx2::vec_dot_q4_0), EF_X86(avx512::vec_dot_q4_0), EF_NEON(neon::vec_dot_q4_0)}},
    {DType::Q2_K, DType::Q8_K, {scalar::vec_dot_q2_K, EF_X86(avx2::vec_dot_q2_K), EF_X86(avx512::vec_dot_q2_K), EF_NEON(neon::vec_dot_q2_K)}},
    {DType::Q3_K, DType::Q8_K, {scalar::vec_dot_q3_K, EF_X86(avx2::vec_dot_q3_K), EF_X86(avx512::vec_dot_q3_K), EF_NEON(neon::vec_dot_q3_K)}},
    {DType::Q4_K, DType::Q8_K, {scalar::vec_dot_q4_K, EF_X86(avx2::vec_dot_q4_K), EF_X86(avx512::vec_dot_q4_K), EF_NEON(neon::vec_dot_q4_K)}},
    {DType::Q5_K, DType::Q8_K, {scalar::vec_dot_q5_K, EF_X86(avx2::vec_dot_q5_K), EF_X86(avx512::vec_dot_q5_K), EF_NEON(neon::vec_dot_q5_K)}},
    {DType::Q6_K, DType::Q8_K, {scalar::vec_dot_q6_K, EF_X86(avx2::vec_dot_q6_K), EF_X86(avx512::vec_dot_q6_K), EF_NEON(neon::vec_dot_q6_K)}},
};

// The 48 EdgeFusion block types (quant/ef_format.h), all with Q8_0 activations: generated rows.
constexpr int kEfTypes = int(DType::EF_LAST) - int(DType::EF_FIRST) + 1;
Row ef_row(int index) {
    return {DType(int(DType::EF_FIRST) + index), DType::Q8_0,
            {scalar::vec_dot_ef(index), EF_X86(avx2::vec_dot_ef(index)), EF_X86(avx512::vec_dot_ef(index)),
             EF_NEON(neon::vec_dot_ef(index))}};
}

// The row of `weight`, or false when it has no kernels.
bool find_row(DType weight, Row& out) {
    for (const Row& r : kRows)
        if (r.weight == weight) {
            out = r;
            return true;
        }
    const int i = int(weight) - int(DType::EF_FIRST);
    if (i < 0 || i >= kEfTypes) return false;
    out = ef_row(i);
    return true;
}

#undef EF_X86
#undef EF_NEON

bool cpu_has(Isa isa) {
    const CpuFeatures& f = cpu_features();
    switch (isa) {
        case Isa::Scalar: return true;
#if defined(__x86_64__)
        case Isa::Avx2: return f.has_avx2_set();
        case Isa::Avx512: return f.has_avx512_set();
#endif
#if defined(__aarch64__)
        case Isa::Neon: return f.neon;
#endif
        default: return false;
    }
}

// EF_KERNEL_ISA caps the pick: kernels of ISAs above it in the preference order are skipped.
int isa_rank(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return 0;
        case Isa::Avx2: case Isa::Neon: return 1;
        case Isa::Avx512: return 2;
        default: return 0;
    }
}

int rank_cap() {
    const char* env = std::getenv("EF_KERNEL_ISA");
    if (!env) return 99;
    for (size_t i = 0; i < kIsas; ++i)
        if (isa_name(Isa(i)) == std::string_view(env)) return isa_rank(Isa(i));
    return 99;
}

struct Table {
    std::array<KernelTraits, size_t(DType::Count)> traits{};
    std::array<bool, size_t(DType::Count)> present{};
    Table() {
        const int cap = rank_cap();
        std::vector<Row> rows(std::begin(kRows), std::end(kRows));
        for (int i = 0; i < kEfTypes; ++i) rows.push_back(ef_row(i));
        for (const Row& r : rows) {
            KernelTraits t{r.weight, r.act, r.by_isa[0], r.by_isa[0], Isa::Scalar};
            for (size_t i = 1; i < kIsas; ++i) {
                const Isa isa = Isa(i);
                if (r.by_isa[i] && isa_available(isa) && isa_rank(isa) <= cap && isa_rank(isa) > isa_rank(t.best_isa)) {
                    t.best = r.by_isa[i];
                    t.best_isa = isa;
                }
            }
            traits[size_t(r.weight)] = t;
            present[size_t(r.weight)] = true;
        }
    }
};

const Table& table() {
    static const Table t;
    return t;
}

}  // namespace

std::string_view isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return "scalar";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
        case Isa::Neon: return "neon";
        default: return "?";
    }
}

bool isa_available(Isa isa) { return cpu_has(isa); }

const KernelTraits* kernel_traits(DType weight) {
    const Table& t = table();
    const size_t i = size_t(weight);
    return i < t.present.size() && t.present[i] ? &t.traits[i] : nullptr;
}

VecDotFn vec_dot_for(DType weight, Isa isa) {
    Row r;
    return find_row(weight, r) && size_t(isa) < kIsas ? r.by_isa[size_t(isa)] : nullptr;
}

size_t act_bytes(DType act, int64_t n) {
    switch (act) {
        case DType::F32: return size_t(n) * 4;
        case DType::F16: case DType::BF16: return size_t(n) * 2;
        case DType::Q8_0: return size_t(n / ggml::QK8_0) * sizeof(ggml::block_q8_0);
        case DType::Q8_K: return size_t(n / ggml::QK_K) * sizeof(ggml::block_q8_K);
        default: return 0;
    }
}

void quantize_act(DType act, const float* x, void* dst, int64_t n) {
    switch (act) {
        case DType::F32:
            std::memcpy(dst, x, size_t(n) * 4);
            break;
        case DType::F16: {
            auto* out = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) out[i] = f32_to_f16(x[i]);
            break;
        }
        case DType::BF16: {
            auto* out = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
            break;
        }
        case DType::Q8_0: {
            // As ggml's x86 code: d = amax / 127 (kept as f16), q = round-half-even(x * 127 / amax).
            auto* out = static_cast<ggml::block_q8_0*>(dst);
            for (int64_t b = 0; b < n / ggml::QK8_0; ++b) {
                const float* v = x + b * ggml::QK8_0;
                float amax = 0.0f;
                for (int j = 0; j < ggml::QK8_0; ++j) amax = std::max(amax, std::fabs(v[j]));
                const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
                out[b].d = f32_to_f16(amax / 127.0f);
                for (int j = 0; j < ggml::QK8_0; ++j) out[b].qs[j] = int8_t(std::nearbyint(v[j] * id));
            }
            break;
        }
        case DType::Q8_K: {
            // The signed value of largest magnitude maps to -127; d = 1 / iscale as f32.
            auto* out = static_cast<ggml::block_q8_K*>(dst);
            for (int64_t b = 0; b < n / ggml::QK_K; ++b) {
                const float* v = x + b * ggml::QK_K;
                float amax = 0.0f, mx = 0.0f;
                for (int j = 0; j < ggml::QK_K; ++j)
                    if (std::fabs(v[j]) > amax) {
                        amax = std::fabs(v[j]);
                        mx = v[j];
                    }
                ggml::block_q8_K& o = out[b];
                if (amax == 0.0f) {
                    std::memset(&o, 0, sizeof o);
                    continue;
                }
                const float iscale = -127.0f / mx;
                o.d = 1.0f / iscale;
                for (int j = 0; j < ggml::QK_K; ++j) o.qs[j] = int8_t(std::min(127.0f, std::nearbyint(iscale * v[j])));
                for (int g = 0; g < ggml::QK_K / 16; ++g) {
                    int s = 0;
                    for (int i = 0; i < 16; ++i) s += o.qs[16 * g + i];
                    o.bsums[g] = int16_t(s);
                }
            }
            break;
        }
        default:
            break;
    }
}

}  // namespace ef::rt::kernels
