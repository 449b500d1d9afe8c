#include "runtime/kernels/gemm.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "quant/half.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/gemm_impl.h"
#include "runtime/kernels/kernels.h"

namespace ef::rt::kernels {

namespace {

constexpr size_t kIsas = size_t(GemmIsa::Count);

// Loops of one vec_dot: weight row outermost, so the row stays in L1 across the T tokens.
template <bool Best, DType W>
void loop_gemm(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y,
               int64_t ldy) {
    const KernelTraits* kt = kernel_traits(W);
    const VecDotFn dot = Best ? kt->best : kt->scalar;
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t t = 0; t < T; ++t) y[t * ldy + r] = dot(n, wb + size_t(r) * wrb, ab + size_t(t) * arb);
}

#define EF_LOOPS(W) loop_gemm<false, W>, loop_gemm<true, W>
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

struct Row {
    DType weight;
    std::array<GemmFn, kIsas> by_isa;  // Scalar, Generic, Avx2, Avx512, Avx512Vnni, Neon
};

const Row kRows[] = {
    {DType::F32, {EF_LOOPS(DType::F32), EF_X86(gemm_avx2::gemm_f32), EF_X86(gemm_avx512::gemm_f32), nullptr, EF_NEON(gemm_neon::gemm_f32)}},
    {DType::F16, {EF_LOOPS(DType::F16), EF_X86(gemm_avx2::gemm_f16), EF_X86(gemm_avx512::gemm_f16), nullptr, nullptr}},
    {DType::BF16, {EF_LOOPS(DType::BF16), EF_X86(gemm_avx2::gemm_bf16), EF_X86(gemm_avx512::gemm_bf16), nullptr, nullptr}},
    {DType::Q8_0, {EF_LOOPS(DType::Q8_0), EF_X86(gemm_avx2::gemm_q8_0), nullptr, EF_X86(gemm_avx512vnni::gemm_q8_0), EF_NEON(gemm_neon::gemm_q8_0)}},
    {DType::Q4_0, {EF_LOOPS(DType::Q4_0), nullptr, nullptr, EF_X86(gemm_avx512vnni::gemm_q4_0), nullptr}},
    {DType::Q2_K, {EF_LOOPS(DType::Q2_K), nullptr, nullptr, nullptr, nullptr}},
    {DType::Q3_K, {EF_LOOPS(DType::Q3_K), nullptr, nullptr, nullptr, nullptr}},
    {DType::Q4_K, {EF_LOOPS(DType::Q4_K), nullptr, nullptr, nullptr, nullptr}},
    {DType::Q5_K, {EF_LOOPS(DType::Q5_K), nullptr, nullptr, nullptr, nullptr}},
    {DType::Q6_K, {EF_LOOPS(DType::Q6_K), nullptr, nullptr, nullptr, nullptr}},
};

#undef EF_LOOPS
#undef EF_X86
#undef EF_NEON

// The 48 EdgeFusion block types: loops of their vec_dot kernels (Scalar and Generic columns only).
constexpr int kEfTypes = int(DType::EF_LAST) - int(DType::EF_FIRST) + 1;
template <size_t... I>
Row ef_row(int index, std::index_sequence<I...>) {
    static constexpr GemmFn scalar[] = {loop_gemm<false, DType(int(DType::EF_FIRST) + int(I))>...};
    static constexpr GemmFn generic[] = {loop_gemm<true, DType(int(DType::EF_FIRST) + int(I))>...};
    return {DType(int(DType::EF_FIRST) + index), {scalar[index], generic[index], nullptr, nullptr, nullptr, nullptr}};
}
// The row of `weight`, or false when it has no GEMM.
bool find_row(DType weight, Row& out) {
    for (const Row& r : kRows)
        if (r.weight == weight) {
            out = r;
            return true;
        }
    const int i = int(weight) - int(DType::EF_FIRST);
    if (i < 0 || i >= kEfTypes) return false;
    out = ef_row(i, std::make_index_sequence<size_t(kEfTypes)>{});
    return true;
}

// Preference order; EF_KERNEL_ISA (scalar|avx2|avx512|neon) caps it as for the vec_dot table.
int rank(GemmIsa isa) {
    switch (isa) {
        case GemmIsa::Scalar: return 0;
        case GemmIsa::Generic: return 1;
        case GemmIsa::Avx2: case GemmIsa::Neon: return 2;
        case GemmIsa::Avx512: return 3;
        case GemmIsa::Avx512Vnni: return 4;
        default: return 0;
    }
}

int rank_cap() {
    const char* env = std::getenv("EF_KERNEL_ISA");
    if (!env) return 99;
    const std::string_view v(env);
    if (v == "scalar") return 1;  // the vec_dot table is capped too, so Generic loops scalar kernels
    if (v == "avx2" || v == "neon") return 2;
    if (v == "avx512") return 4;
    return 99;
}

// The f32-activation kernel beside a tiled kernel (GemmTraits::f32act), and its panel height.
void add_f32act(GemmTraits& t) {
#if defined(__x86_64__)
    if (t.best_isa != GemmIsa::Avx512) return;
    t.panel_rows = 48;
    if (t.weight == DType::F32) t.f32act = t.best;
    else if (t.weight == DType::F16) t.f32act = gemm_avx512::gemm_f16_f32act;
    else if (t.weight == DType::BF16) t.f32act = gemm_avx512::gemm_bf16_f32act;
#else
    (void)t;
#endif
}

struct Table {
    std::array<GemmTraits, size_t(DType::Count)> traits{};
    std::array<bool, size_t(DType::Count)> present{};
    bool avx512_round = false;
    Table() {
        const int cap = rank_cap();
        avx512_round = gemm_isa_available(GemmIsa::Avx512) && rank(GemmIsa::Avx512) <= cap;
        std::vector<Row> rows(std::begin(kRows), std::end(kRows));
        for (int i = 0; i < kEfTypes; ++i) rows.push_back(ef_row(i, std::make_index_sequence<size_t(kEfTypes)>{}));
        for (const Row& r : rows) {
            const KernelTraits* kt = kernel_traits(r.weight);
            if (!kt) continue;
            GemmTraits t{r.weight, kt->act, r.by_isa[0], r.by_isa[1], GemmIsa::Generic};
            for (size_t i = 2; i < kIsas; ++i) {
                const GemmIsa isa = GemmIsa(i);
                if (r.by_isa[i] && gemm_isa_available(isa) && rank(isa) <= cap && rank(isa) > rank(t.best_isa)) {
                    t.best = r.by_isa[i];
                    t.best_isa = isa;
                }
            }
            add_f32act(t);
            traits[size_t(r.weight)] = t;
            present[size_t(r.weight)] = true;
        }
    }
};

const Table& table() {
    static const Table t;
    return t;
}

struct Scratch {
    struct Free {
        void operator()(void* p) const { ::operator delete(p, std::align_val_t(64)); }
    };
    std::unique_ptr<void, Free> p[4];
    size_t size[4] = {0, 0, 0, 0};
};

}  // namespace

std::string_view gemm_isa_name(GemmIsa isa) {
    switch (isa) {
        case GemmIsa::Scalar: return "scalar";
        case GemmIsa::Generic: return "generic";
        case GemmIsa::Avx2: return "avx2";
        case GemmIsa::Avx512: return "avx512";
        case GemmIsa::Avx512Vnni: return "avx512vnni";
        case GemmIsa::Neon: return "neon";
        default: return "?";
    }
}

bool gemm_isa_available(GemmIsa isa) {
    const CpuFeatures& f = cpu_features();
    switch (isa) {
        case GemmIsa::Scalar: case GemmIsa::Generic: return true;
#if defined(__x86_64__)
        case GemmIsa::Avx2: return f.has_avx2_set();
        case GemmIsa::Avx512: return f.has_avx512_set();
        case GemmIsa::Avx512Vnni: return f.has_avx512_set() && f.avx512_vnni;
#endif
#if defined(__aarch64__)
        case GemmIsa::Neon: return f.neon;
#endif
        default: (void)f; return false;
    }
}

const GemmTraits* gemm_traits(DType weight) {
    const Table& t = table();
    const size_t i = size_t(weight);
    return i < t.present.size() && t.present[i] ? &t.traits[i] : nullptr;
}

GemmFn gemm_for(DType weight, GemmIsa isa) {
    Row r;
    return find_row(weight, r) && size_t(isa) < kIsas ? r.by_isa[size_t(isa)] : nullptr;
}

void round_act_f32(DType act, const float* x, float* out, int64_t n) {
    if (act == DType::F32) {
        std::copy(x, x + n, out);
        return;
    }
#if defined(__x86_64__)
    if (table().avx512_round) {
        gemm_avx512::round_act_f32(act == DType::BF16, x, out, n);
        return;
    }
#endif
    if (act == DType::BF16)
        for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(f32_to_bf16(x[i]));
    else
        for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(f32_to_f16(x[i]));
}

void* gemm_scratch(int slot, size_t bytes) {
    thread_local Scratch s;
    if (s.size[slot] < bytes) {
        const size_t grown = std::max(bytes, s.size[slot] * 3 / 2);
        s.p[slot].reset(::operator new(grown, std::align_val_t(64)));
        s.size[slot] = grown;
    }
    return s.p[slot].get();
}

}  // namespace ef::rt::kernels
