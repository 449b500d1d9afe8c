// Internal: compile-time facts of the EdgeFusion block layout (notes/ef_format.md) for the EF
// vec_dot kernels of every ISA file. Constants and templates only, all in an anonymous namespace,
// so nothing here can become a shared out-of-line copy compiled with wider ISA flags (see
// vec_dot_impl.h); quant/ef_format.h is not included for the same reason.
#pragma once
#include <cstdint>
#include <utility>

namespace ef::rt::kernels {
namespace {
namespace efk {

// Index order of the 48 types: bits outer, then block, then symmetric before affine.
constexpr int kBits[6] = {2, 3, 4, 5, 6, 8};
constexpr int kBlocks[4] = {32, 64, 128, 256};
constexpr int bits_of(int index) { return kBits[index / 8]; }
constexpr int block_of(int index) { return kBlocks[(index / 2) % 4]; }
constexpr bool affine_of(int index) { return (index & 1) != 0; }

// Width of the low plane; the high plane holds the remaining K - lo bits.
constexpr int lo_bits(int k) { return k == 2 || k == 3 ? 2 : k == 8 ? 8 : 4; }
constexpr int header_bytes(bool affine) { return affine ? 4 : 2; }
constexpr int block_bytes(int k, int b, bool affine) { return header_bytes(affine) + b * k / 8; }

// The table of one ISA's kernels, Dot<K, B, A> instantiated for the 48 types in index order.
template <template <int, int, bool> class Dot, size_t... I>
EfVecDot pick(int index, std::index_sequence<I...>) {
    static constexpr EfVecDot table[] = {&Dot<bits_of(int(I)), block_of(int(I)), affine_of(int(I))>::run...};
    return index >= 0 && index < int(sizeof...(I)) ? table[index] : nullptr;
}
template <template <int, int, bool> class Dot>
EfVecDot pick(int index) {
    return pick<Dot>(index, std::make_index_sequence<48>{});
}

}  // namespace efk
}  // namespace
}  // namespace ef::rt::kernels
