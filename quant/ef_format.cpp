#include "quant/ef_format.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "quant/half.h"

namespace ef {
namespace {

constexpr int ef_index(int bits_idx, int block_idx, int affine) { return (bits_idx * 4 + block_idx) * 2 + affine; }

constexpr EfLayout layout_of_index(int index) {
    return EfLayout{kEfBits[index / 8], kEfBlocks[(index / 2) % 4], (index & 1) != 0};
}

// Largest f16 magnitude: scales beyond it are clamped so a block never decodes to inf/NaN.
constexpr float kF16Max = 65504.0f;

// Code for x at scale 1/id around offset `base`, clamped to [0, qmax]; NaN goes to 0.
inline int round_code(float v, int qmax) {
    float q = std::nearbyint(v);
    if (!(q >= 0.0f)) q = 0.0f;
    if (q > float(qmax)) q = float(qmax);
    return int(q);
}

template <int K, int B, bool A>
void to_float_fn(const void* src, float* dst, int64_t n) {
    ef_dequantize(EfLayout{K, B, A}, src, dst, n);
}
template <int K, int B, bool A>
void from_float_fn(const float* src, void* dst, int64_t n) {
    ef_quantize_ref(EfLayout{K, B, A}, src, dst, n);
}

template <int K, int B, bool A>
constexpr TypeTraits row(const char* name, int index) {
    return TypeTraits{DType(int(DType::EF_FIRST) + index), name, kEfGgmlIdBase + uint32_t(index), B,
                      EfLayout{K, B, A}.type_size(), true, to_float_fn<K, B, A>, from_float_fn<K, B, A>};
}

// Rows in index order: bits outer, block, then symmetric before affine.
#define EF_ROWS_FOR_BITS(K, KI)                                                                          \
    row<K, 32, false>("ef" #K "_b32", ef_index(KI, 0, 0)), row<K, 32, true>("ef" #K "a_b32", ef_index(KI, 0, 1)),     \
    row<K, 64, false>("ef" #K "_b64", ef_index(KI, 1, 0)), row<K, 64, true>("ef" #K "a_b64", ef_index(KI, 1, 1)),     \
    row<K, 128, false>("ef" #K "_b128", ef_index(KI, 2, 0)), row<K, 128, true>("ef" #K "a_b128", ef_index(KI, 2, 1)), \
    row<K, 256, false>("ef" #K "_b256", ef_index(KI, 3, 0)), row<K, 256, true>("ef" #K "a_b256", ef_index(KI, 3, 1))

constexpr std::array<TypeTraits, kEfTypeCount> kEfTraits = {{
    EF_ROWS_FOR_BITS(2, 0), EF_ROWS_FOR_BITS(3, 1), EF_ROWS_FOR_BITS(4, 2),
    EF_ROWS_FOR_BITS(5, 3), EF_ROWS_FOR_BITS(6, 4), EF_ROWS_FOR_BITS(8, 5),
}};
#undef EF_ROWS_FOR_BITS

static_assert([] {
    for (int i = 0; i < kEfTypeCount; ++i) {
        const EfLayout l = layout_of_index(i);
        const auto& t = kEfTraits[size_t(i)];
        if (int(t.type) != int(DType::EF_FIRST) + i || t.block_size != l.block || t.type_size != l.type_size()) return false;
    }
    return true;
}(), "EF traits rows must follow the index formula of notes/ef_format.md");

// Block bytes of a few layouts spelled out, as a check on the formula type_size = 2 + 2a + B*k/8.
static_assert(EfLayout{3, 128, false}.type_size() == 50);
static_assert(EfLayout{2, 32, true}.type_size() == 12);
static_assert(EfLayout{8, 256, true}.type_size() == 260);
static_assert(EfLayout{5, 64, false}.type_size() == 42);

}  // namespace

std::optional<DType> ef_dtype(int bits, int block, bool affine) {
    const int* kb = std::find(std::begin(kEfBits), std::end(kEfBits), bits);
    const int* bb = std::find(std::begin(kEfBlocks), std::end(kEfBlocks), block);
    if (kb == std::end(kEfBits) || bb == std::end(kEfBlocks)) return std::nullopt;
    return DType(int(DType::EF_FIRST) + ef_index(int(kb - kEfBits), int(bb - kEfBlocks), affine ? 1 : 0));
}

std::optional<EfLayout> ef_layout(DType t) {
    if (!is_ef_dtype(t)) return std::nullopt;
    return layout_of_index(int(t) - int(DType::EF_FIRST));
}

const TypeTraits& ef_type_traits(int index) { return kEfTraits[size_t(index)]; }

void ef_pack_plane(const uint8_t* values, int block, int width, uint8_t* plane) {
    const int stride = block * width / 8;
    const int per_byte = 8 / width;
    const unsigned mask = (1u << width) - 1u;
    for (int j = 0; j < stride; ++j) {
        unsigned b = 0;
        for (int i = 0; i < per_byte; ++i) b |= (unsigned(values[j + i * stride]) & mask) << (width * i);
        plane[j] = uint8_t(b);
    }
}

void ef_unpack_plane(const uint8_t* plane, int block, int width, uint8_t* values) {
    const int stride = block * width / 8;
    const int per_byte = 8 / width;
    const unsigned mask = (1u << width) - 1u;
    for (int j = 0; j < stride; ++j)
        for (int i = 0; i < per_byte; ++i) values[j + i * stride] = uint8_t((plane[j] >> (width * i)) & mask);
}

void ef_pack_codes(const EfLayout& l, const uint8_t* codes, uint8_t* planes) {
    const int lo = l.lo_bits(), hi = l.hi_bits();
    std::array<uint8_t, 256> part{};
    const unsigned lo_mask = (1u << lo) - 1u;
    for (int i = 0; i < l.block; ++i) part[size_t(i)] = uint8_t(codes[i] & lo_mask);
    ef_pack_plane(part.data(), l.block, lo, planes);
    if (hi == 0) return;
    for (int i = 0; i < l.block; ++i) part[size_t(i)] = uint8_t(codes[i] >> lo);
    ef_pack_plane(part.data(), l.block, hi, planes + l.block * lo / 8);
}

void ef_unpack_codes(const EfLayout& l, const uint8_t* planes, uint8_t* codes) {
    const int lo = l.lo_bits(), hi = l.hi_bits();
    ef_unpack_plane(planes, l.block, lo, codes);
    if (hi == 0) return;
    std::array<uint8_t, 256> high{};
    ef_unpack_plane(planes + l.block * lo / 8, l.block, hi, high.data());
    for (int i = 0; i < l.block; ++i) codes[i] = uint8_t(codes[i] | (high[size_t(i)] << lo));
}

void ef_write_block(const EfLayout& l, uint16_t d, uint16_t m, const uint8_t* codes, void* block) {
    auto* p = static_cast<uint8_t*>(block);
    std::memcpy(p, &d, 2);
    if (l.affine) std::memcpy(p + 2, &m, 2);
    ef_pack_codes(l, codes, p + l.header_bytes());
}

void ef_read_block(const EfLayout& l, const void* block, uint16_t& d, uint16_t& m, uint8_t* codes) {
    const auto* p = static_cast<const uint8_t*>(block);
    std::memcpy(&d, p, 2);
    m = 0;
    if (l.affine) std::memcpy(&m, p + 2, 2);
    ef_unpack_codes(l, p + l.header_bytes(), codes);
}

void ef_dequantize(const EfLayout& l, const void* src, float* dst, int64_t n) {
    const auto* p = static_cast<const uint8_t*>(src);
    std::array<uint8_t, 256> codes{};
    for (int64_t b = 0; b < n / l.block; ++b) {
        uint16_t dh = 0, mh = 0;
        ef_read_block(l, p + b * l.type_size(), dh, mh, codes.data());
        const float d = f16_to_f32(dh), m = f16_to_f32(mh);
        float* y = dst + b * l.block;
        for (int i = 0; i < l.block; ++i) y[i] = ef_decode(l, d, m, codes[size_t(i)]);
    }
}

void ef_quantize_ref(const EfLayout& l, const float* src, void* dst, int64_t n) {
    auto* p = static_cast<uint8_t*>(dst);
    std::array<uint8_t, 256> codes{};
    const int qmax = (1 << l.bits) - 1;
    const int half = 1 << (l.bits - 1);
    for (int64_t b = 0; b < n / l.block; ++b) {
        const float* x = src + b * l.block;
        uint16_t dh = 0, mh = 0;
        if (l.affine) {
            float lo = x[0], hi = x[0];
            for (int i = 1; i < l.block; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
            mh = f32_to_f16(lo);
            const float m = f16_to_f32(mh);
            dh = f32_to_f16(std::min((hi - m) / float(qmax), kF16Max));
            const float d = f16_to_f32(dh);
            const float id = d > 0.0f ? 1.0f / d : 0.0f;
            for (int i = 0; i < l.block; ++i) codes[size_t(i)] = uint8_t(round_code((x[i] - m) * id, qmax));
        } else {
            float amax = 0.0f;
            for (int i = 0; i < l.block; ++i) amax = std::max(amax, std::fabs(x[i]));
            // Levels d*(-2^(k-1) .. 2^(k-1)-1): with d = amax/(2^(k-1) - 1/2) all of [-amax, amax] rounds
            // within d/2 of a level.
            dh = f32_to_f16(std::min(amax / (float(half) - 0.5f), kF16Max));
            const float d = f16_to_f32(dh);
            const float id = d > 0.0f ? 1.0f / d : 0.0f;
            for (int i = 0; i < l.block; ++i) codes[size_t(i)] = uint8_t(round_code(x[i] * id + float(half), qmax));
        }
        ef_write_block(l, dh, mh, codes.data(), p + b * l.type_size());
    }
}

bool ef_companion_base(std::string_view name, std::string* base) {
    for (std::string_view s : {kEfRowptrSuffix, kEfColsSuffix, kEfValsSuffix, kEfScaleSuffix})
        if (name.size() > s.size() && name.substr(name.size() - s.size()) == s) {
            if (base) *base = std::string(name.substr(0, name.size() - s.size()));
            return true;
        }
    return false;
}

void ef_pack6(const int8_t* v, int64_t n, uint8_t* out) {
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t u = uint32_t(v[i]) & 63u;
        const int64_t bit = i * 6;
        const int sh = int(bit & 7);
        out[bit >> 3] = uint8_t(out[bit >> 3] | (u << sh));
        if (sh > 2) out[(bit >> 3) + 1] = uint8_t(out[(bit >> 3) + 1] | (u >> (8 - sh)));
    }
}

std::optional<std::string> ef_check_outliers(const EfOutlierView& s) {
    if (s.nnz == 0) return std::nullopt;
    if (!s.rowptr || !s.col || !s.vals || !s.scale) return "outlier companions are incomplete";
    if (s.cols > kEfMaxOutlierCols)
        return "outlier columns are 16-bit but the matrix has " + std::to_string(s.cols) + " columns";
    if (s.rowptr[0] != 0) return "outlier_rowptr[0] is " + std::to_string(s.rowptr[0]) + ", not 0";
    for (int64_t r = 0; r < s.rows; ++r)
        if (s.rowptr[r + 1] < s.rowptr[r])
            return "outlier_rowptr decreases at row " + std::to_string(r);
    if (s.rowptr[s.rows] != s.nnz)
        return "outlier_rowptr ends at " + std::to_string(s.rowptr[s.rows]) + " but there are " +
               std::to_string(s.nnz) + " outliers";
    for (int64_t i = 0; i < s.nnz; ++i)
        if (int64_t(s.col[i]) >= s.cols)
            return "outlier " + std::to_string(i) + " has column " + std::to_string(s.col[i]) + " beyond " +
                   std::to_string(s.cols) + " columns";
    return std::nullopt;
}

void sparse_outliers_apply(float* y, const EfOutlierView& s, const float* x) {
    if (s.empty()) return;
    for (int64_t r = 0; r < s.rows; ++r) {
        const int32_t b = s.rowptr[r], e = s.rowptr[r + 1];
        if (b == e) continue;
        float acc = 0.0f;
        for (int32_t i = b; i < e; ++i) acc += float(ef_get6(s.vals, i)) * x[s.col[i]];
        y[r] += f16_to_f32(s.scale[r]) * acc;
    }
}

void sparse_outliers_add_dense(float* w, const EfOutlierView& s) {
    if (s.empty()) return;
    for (int64_t r = 0; r < s.rows; ++r) {
        const float sr = f16_to_f32(s.scale[r]);
        for (int32_t i = s.rowptr[r]; i < s.rowptr[r + 1]; ++i)
            w[r * s.cols + s.col[i]] += sr * float(ef_get6(s.vals, i));
    }
}

}  // namespace ef
