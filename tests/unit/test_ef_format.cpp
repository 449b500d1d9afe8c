// The EdgeFusion block types and quantizer (issue 4, notes/ef_format.md). The byte layout is checked
// against a bit-by-bit writer in this file that follows the note's text; error bounds, the scale search
// and the outliers against plain arithmetic on the dequantized values; GGUF round trip through our
// writer/reader and @huggingface/gguf.
#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/ef_tensors.h"
#include "core/formats/format.h"
#include "core/inspect.h"
#include "core/synth.h"
#include "quant/ef_format.h"
#include "quant/ef_quantize.h"
#include "quant/half.h"
#include "tests/support/test_support.h"

using namespace ef;

namespace {

// --- the note's layout, written bit by bit ------------------------------------------------------
void set_bit(std::vector<uint8_t>& b, size_t byte, int bit, unsigned v) {
    if (v & 1u) b[byte] = uint8_t(b[byte] | (1u << bit));
}
// Puts value `v` (width bits) of weight i into a plane that starts at `base`, per the note's rules.
void put_field(std::vector<uint8_t>& b, size_t base, int B, int width, int i, unsigned v) {
    size_t byte = 0;
    int bit0 = 0;
    if (width == 8) { byte = size_t(i); bit0 = 0; }                              // byte j = weight j
    else if (width == 4) { byte = size_t(i % (B / 2)); bit0 = 4 * (i / (B / 2)); } // j | j + B/2 << 4
    else if (width == 2) { byte = size_t(i % (B / 4)); bit0 = 2 * (i / (B / 4)); } // j + i*B/4 at 2i
    else { byte = size_t(i % (B / 8)); bit0 = i / (B / 8); }                       // j + i*B/8 at bit i
    for (int k = 0; k < width; ++k) set_bit(b, base + byte, bit0 + k, v >> k);
}
std::vector<uint8_t> note_block(int k, int B, bool affine, uint16_t d, uint16_t m, const std::vector<uint8_t>& u) {
    const int lo = k == 2 || k == 3 ? 2 : k == 8 ? 8 : 4;  // table in the note
    const int hi = k - lo;
    const size_t header = affine ? 4 : 2;
    std::vector<uint8_t> b(header + size_t(B * k / 8), 0);
    b[0] = uint8_t(d & 0xff); b[1] = uint8_t(d >> 8);
    if (affine) { b[2] = uint8_t(m & 0xff); b[3] = uint8_t(m >> 8); }
    for (int i = 0; i < B; ++i) {
        put_field(b, header, B, lo, i, u[size_t(i)] & ((1u << lo) - 1u));
        if (hi) put_field(b, header + size_t(B * lo / 8), B, hi, i, u[size_t(i)] >> lo);
    }
    return b;
}
// 6-bit two's complement, LSB-first bit stream, read bit by bit.
int note_get6(const std::vector<uint8_t>& s, int64_t i) {
    int v = 0;
    for (int k = 0; k < 6; ++k) {
        const int64_t bit = i * 6 + k;
        v |= ((s[size_t(bit / 8)] >> (bit % 8)) & 1) << k;
    }
    return v >= 32 ? v - 64 : v;
}

std::vector<float> matrix(const QString& dist, int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::student_t_distribution<float> t3(3.0f);
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (float& v : w) v = dist == "student_t3" ? 0.02f * t3(rng) : 0.02f * normal(rng);
    return w;
}

void add_layout_rows() {
    QTest::addColumn<int>("k");
    QTest::addColumn<int>("B");
    QTest::addColumn<bool>("affine");
    for (int k : {2, 3, 4, 5, 6, 8})
        for (int B : {32, 64, 128, 256})
            for (bool a : {false, true}) QTest::addRow("ef%d%s_b%d", k, a ? "a" : "", B) << k << B << a;
}

std::vector<uint8_t> bytes_of(const Tensor& t) {
    const auto* p = reinterpret_cast<const uint8_t*>(t.data.data());
    return {p, p + t.data.size()};
}

// Independent dense correction S from the companions' raw bytes.
std::vector<double> dense_s(const EfQuantized& q, int64_t R, int64_t C) {
    std::vector<double> s(static_cast<size_t>(R * C), 0.0);
    if (q.companions.empty()) return s;
    std::vector<int32_t> rp(static_cast<size_t>(R + 1));
    std::memcpy(rp.data(), q.companions[0].data.data(), rp.size() * 4);
    std::vector<uint16_t> cols(static_cast<size_t>(q.companions[1].numel()));
    std::memcpy(cols.data(), q.companions[1].data.data(), cols.size() * 2);
    const std::vector<uint8_t> vals = bytes_of(q.companions[2]);
    std::vector<uint16_t> sc(static_cast<size_t>(R));
    std::memcpy(sc.data(), q.companions[3].data.data(), sc.size() * 2);
    for (int64_t r = 0; r < R; ++r)
        for (int32_t i = rp[size_t(r)]; i < rp[size_t(r + 1)]; ++i)
            s[size_t(r * C + cols[size_t(i)])] += double(f16_to_f32(sc[size_t(r)])) * note_get6(vals, i);
    return s;
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return std::sqrt(s / double(a.size()));
}

}  // namespace

class TestEfFormat : public QObject {
    Q_OBJECT
private slots:
    // Every (k, B, affine) is one DType row with the note's name, id and sizes.
    void typeRows_data() { add_layout_rows(); }
    void typeRows() {
        QFETCH(int, k);
        QFETCH(int, B);
        QFETCH(bool, affine);
        const auto dt = ef_dtype(k, B, affine);
        QVERIFY(dt);
        const int kidx = int(std::find(std::begin(kEfBits), std::end(kEfBits), k) - kEfBits);
        const int bidx = int(std::find(std::begin(kEfBlocks), std::end(kEfBlocks), B) - kEfBlocks);
        const int index = (kidx * 4 + bidx) * 2 + (affine ? 1 : 0);
        QCOMPARE(int(*dt), int(DType::EF_FIRST) + index);
        const auto& tr = type_traits(*dt);
        const std::string name = "ef" + std::to_string(k) + (affine ? "a" : "") + "_b" + std::to_string(B);
        QCOMPARE(std::string(tr.name), name);
        QCOMPARE(tr.ggml_id, uint32_t(1000 + index));
        QCOMPARE(tr.block_size, int64_t(B));
        QCOMPARE(tr.type_size, int64_t(2 + 2 * affine + B * k / 8));
        QVERIFY(tr.quantized && tr.to_float && tr.from_float_ref);
        QCOMPARE(dtype_from_name(name), dt);
        QCOMPARE(dtype_from_ggml_id(uint32_t(1000 + index)), dt);
        const auto l = ef_layout(*dt);
        QVERIFY(l && l->bits == k && l->block == B && l->affine == affine);
        QCOMPARE(dtype_bytes(*dt, 4 * B), std::optional<uint64_t>(uint64_t(4 * tr.type_size)));
    }
    void layoutRejects() {
        QVERIFY(!ef_dtype(7, 128, false));
        QVERIFY(!ef_dtype(3, 48, false));
        QVERIFY(!ef_layout(DType::Q4_K));
        QVERIFY(!dtype_from_ggml_id(1048));
    }

    // Random codes: our block bytes equal the note's bit-by-bit layout; unpack and to_float invert it.
    void packRoundTrip_data() { add_layout_rows(); }
    void packRoundTrip() {
        QFETCH(int, k);
        QFETCH(int, B);
        QFETCH(bool, affine);
        const EfLayout l{k, B, affine};
        std::mt19937 rng(uint32_t(k * 1000 + B + affine));
        for (int trial = 0; trial < 20; ++trial) {
            std::vector<uint8_t> u(static_cast<size_t>(B));
            for (auto& c : u) c = uint8_t(rng() & ((1u << k) - 1u));
            if (trial == 0) std::fill(u.begin(), u.end(), uint8_t((1u << k) - 1u));
            const uint16_t d = f32_to_f16(0.01f * float(1 + trial)), m = f32_to_f16(-0.3f + 0.01f * float(trial));
            std::vector<uint8_t> ours(static_cast<size_t>(l.type_size()));
            ef_write_block(l, d, m, u.data(), ours.data());
            const std::vector<uint8_t> want = note_block(k, B, affine, d, m, u);
            QCOMPARE(ours, want);
            std::vector<uint8_t> back(static_cast<size_t>(B));
            uint16_t d2 = 0, m2 = 0;
            ef_read_block(l, ours.data(), d2, m2, back.data());
            QCOMPARE(back, u);
            QCOMPARE(d2, d);
            std::vector<float> f(static_cast<size_t>(B));
            type_traits(*ef_dtype(k, B, affine)).to_float(want.data(), f.data(), B);
            for (int i = 0; i < B; ++i) {
                const float want_w = affine ? f16_to_f32(d) * float(u[size_t(i)]) + f16_to_f32(m)
                                            : f16_to_f32(d) * float(int(u[size_t(i)]) - (1 << (k - 1)));
                QCOMPARE(f[size_t(i)], want_w);
            }
        }
    }

    // from_float_ref: every weight within d/2 of its value (plus the f16 rounding of d and m), and d is
    // the amax scale, not a larger one.
    void refErrorBound_data() { add_layout_rows(); }
    void refErrorBound() {
        QFETCH(int, k);
        QFETCH(int, B);
        QFETCH(bool, affine);
        const DType dt = *ef_dtype(k, B, affine);
        const auto& tr = type_traits(dt);
        for (const char* dist : {"gaussian", "student_t3"}) {
            const std::vector<float> x = matrix(dist, 16, 256, 7);
            std::vector<uint8_t> q(static_cast<size_t>(*dtype_bytes(dt, int64_t(x.size()))));
            tr.from_float_ref(x.data(), q.data(), int64_t(x.size()));
            std::vector<float> y(x.size());
            tr.to_float(q.data(), y.data(), int64_t(x.size()));
            for (size_t b = 0; b < x.size() / size_t(B); ++b) {
                uint16_t dh = 0, mh = 0;
                std::memcpy(&dh, q.data() + b * size_t(tr.type_size), 2);
                if (affine) std::memcpy(&mh, q.data() + b * size_t(tr.type_size) + 2, 2);
                const double d = std::fabs(f16_to_f32(dh)), m = f16_to_f32(mh);
                double amax = 0, mn = 1e30, mx = -1e30;
                for (int i = 0; i < B; ++i) {
                    const double v = x[b * size_t(B) + size_t(i)];
                    amax = std::max(amax, std::fabs(v)); mn = std::min(mn, v); mx = std::max(mx, v);
                }
                const double qmax = (1 << k) - 1;
                const double d_amax = affine ? (mx - mn) / qmax : amax / ((1 << (k - 1)) - 0.5);
                QVERIFY2(d <= d_amax * (1 + 1.0 / 1024) + 1e-12, qPrintable(QString("block %1: d %2 > amax scale %3").arg(b).arg(d).arg(d_amax)));
                const double tol = d / 2 + std::ldexp(std::fabs(m) + d * qmax, -11) + 1e-9;
                for (int i = 0; i < B; ++i) {
                    const size_t j = b * size_t(B) + size_t(i);
                    const double err = std::fabs(double(x[j]) - y[j]);
                    QVERIFY2(err <= tol, qPrintable(QString("%1 weight %2: |err| %3 > d/2 %4").arg(dist).arg(j).arg(err).arg(tol)));
                }
            }
        }
    }

    // The scale search (with steps = 0 it is exactly from_float_ref) is never worse than plain RTN,
    // per matrix and, with importance weights, in the weighted error of every block.
    void searchNotWorse_data() {
        QTest::addColumn<int>("k");
        QTest::addColumn<bool>("affine");
        QTest::addColumn<QString>("dist");
        for (int k : {2, 3, 4, 5, 6, 8})
            for (bool a : {false, true})
                for (const char* d : {"gaussian", "student_t3"})
                    QTest::addRow("k%d%s/%s", k, a ? "a" : "", d) << k << a << QString(d);
    }
    void searchNotWorse() {
        QFETCH(int, k);
        QFETCH(bool, affine);
        QFETCH(QString, dist);
        const int64_t R = 64, C = 512;
        const std::vector<float> w = matrix(dist, R, C, 11);
        EfQuantOptions o;
        o.bits = k; o.block = 64; o.affine = affine; o.outlier_fraction = 0; o.search_steps = 0;
        auto plain = ef_quantize_matrix("w", w, R, C, o);
        QVERIFY2(plain, plain ? "" : plain.message().c_str());
        std::vector<uint8_t> ref(plain->blocks.data.size());
        type_traits(plain->blocks.dtype).from_float_ref(w.data(), ref.data(), R * C);
        QCOMPARE(bytes_of(plain->blocks), ref);
        o.search_steps = 9;
        auto searched = ef_quantize_matrix("w", w, R, C, o);
        QVERIFY(searched);
        // Errors measured here from the dequantized floats, not from the reported stats.
        const double e_plain = rmse(*ef_dequantize_matrix(*plain), w), e_search = rmse(*ef_dequantize_matrix(*searched), w);
        QVERIFY2(e_search <= e_plain, qPrintable(QString("search %1 > plain %2").arg(e_search).arg(e_plain)));
        QVERIFY(std::fabs(searched->stats.rmse - e_search) <= 1e-6 * e_search + 1e-12);
        qInfo("k=%d%s %s: RMSE plain %.4g, searched %.4g (%.1f%% lower)", k, affine ? "a" : "", qPrintable(dist), e_plain,
              e_search, 100.0 * (1 - e_search / e_plain));

        // Importance-weighted: each block's weighted error is at most plain RTN's.
        std::mt19937 rng(5);
        std::uniform_real_distribution<float> U(0.0f, 4.0f);
        const EfLayout l{k, 64, affine};
        std::vector<float> imp(64);
        std::vector<uint8_t> blk(static_cast<size_t>(l.type_size())), pb(size_t(l.type_size()));
        std::vector<float> y(64);
        for (int b = 0; b < 64; ++b) {
            for (float& v : imp) v = U(rng) * U(rng);
            const float* x = w.data() + b * 64;
            const double got = ef_quantize_block(l, x, imp.data(), 9, blk.data());
            ef_quantize_ref(l, x, pb.data(), 64);
            ef_dequantize(l, pb.data(), y.data(), 64);
            double e_ref = 0;
            for (int i = 0; i < 64; ++i) e_ref += double(imp[size_t(i)]) * (double(x[i]) - y[size_t(i)]) * (double(x[i]) - y[size_t(i)]);
            ef_dequantize(l, blk.data(), y.data(), 64);
            double e_got = 0;
            for (int i = 0; i < 64; ++i) e_got += double(imp[size_t(i)]) * (double(x[i]) - y[size_t(i)]) * (double(x[i]) - y[size_t(i)]);
            QVERIFY(std::fabs(e_got - got) <= 1e-6 * e_got + 1e-15);
            QVERIFY2(e_got <= e_ref * (1 + 1e-9), qPrintable(QString("block %1: weighted %2 > plain %3").arg(b).arg(e_got).arg(e_ref)));
        }
    }

    // p = 0.5% on a heavy-tailed matrix: lower RMSE than without, honest effective bits, the companions
    // decode (independently) to the right structure, the kept weights are the largest.
    void outliers_data() {
        QTest::addColumn<int>("k");
        QTest::addColumn<bool>("affine");
        QTest::addColumn<bool>("saliency");
        for (int k : {2, 3, 4})
            for (bool a : {false, true}) QTest::addRow("k%d%s", k, a ? "a" : "") << k << a << false;
        QTest::addRow("k3/saliency") << 3 << false << true;
    }
    void outliers() {
        QFETCH(int, k);
        QFETCH(bool, affine);
        QFETCH(bool, saliency);
        const int64_t R = 128, C = 512;
        const std::vector<float> w = matrix("student_t3", R, C, 21);
        EfQuantOptions o;
        o.bits = k; o.block = 128; o.affine = affine; o.outlier_fraction = 0;
        std::vector<float> energy(static_cast<size_t>(C));
        for (int64_t c = 0; c < C; ++c) energy[size_t(c)] = 0.5f + float(c % 7);
        auto base = ef_quantize_matrix("blk.0.attn_q.weight", w, R, C, o);
        QVERIFY(base);
        o.outlier_fraction = 0.005;
        if (saliency) { o.selection = OutlierSelection::Saliency; o.activation_energy = energy; }
        auto q = ef_quantize_matrix("blk.0.attn_q.weight", w, R, C, o);
        QVERIFY2(q, q ? "" : q.message().c_str());
        const int64_t nnz = int64_t(std::floor(0.005 * double(R * C)));
        QCOMPARE(q->stats.nnz, nnz);
        QCOMPARE(q->companions.size(), size_t(4));
        const char* suffix[] = {".outlier_rowptr", ".outlier_cols", ".outlier_vals", ".outlier_scale"};
        const DType types[] = {DType::I32, DType::I16, DType::I8, DType::F16};
        const int64_t sizes[] = {R + 1, nnz, (nnz * 6 + 7) / 8, R};
        uint64_t bytes = uint64_t(R * C / 128 * (2 + 2 * affine + 128 * k / 8));
        QCOMPARE(q->blocks.nbytes(), bytes);
        for (int i = 0; i < 4; ++i) {
            QCOMPARE(q->companions[size_t(i)].name, std::string("blk.0.attn_q.weight") + suffix[i]);
            QCOMPARE(q->companions[size_t(i)].dtype, types[i]);
            QCOMPARE(q->companions[size_t(i)].shape, Shape{sizes[i]});
        }
        bytes += uint64_t(4 * (R + 1) + 2 * nnz + (nnz * 6 + 7) / 8 + 2 * R);
        QCOMPARE(q->stats.bytes, bytes);
        QCOMPARE(q->stats.effective_bits, 8.0 * double(bytes) / double(R * C));
        QCOMPARE(q->stats.code_bits, double(k));

        // Dequantized blocks + the independently decoded S.
        const std::vector<float> blocks = *q->blocks.to_f32();
        const std::vector<double> S = dense_s(*q, R, C);
        std::vector<float> full(blocks.size());
        for (size_t i = 0; i < full.size(); ++i) full[i] = float(double(blocks[i]) + S[i]);
        const double e_out = rmse(full, w), e_base = rmse(*ef_dequantize_matrix(*base), w);
        QVERIFY2(e_out < e_base, qPrintable(QString("with outliers %1 >= without %2").arg(e_out).arg(e_base)));
        QVERIFY(std::fabs(e_out - q->stats.rmse) <= 1e-4 * e_out);
        const std::vector<float> lib = *ef_dequantize_matrix(*q);
        for (size_t i = 0; i < full.size(); ++i) QVERIFY(std::fabs(lib[i] - full[i]) <= 1e-6f * (std::fabs(full[i]) + 1e-3f));
        qInfo("k=%d%s%s: RMSE %.4g -> %.4g with %lld outliers, effective bits %.3f -> %.3f", k, affine ? "a" : "",
              saliency ? " saliency" : "", e_base, e_out, static_cast<long long>(nnz), base->stats.effective_bits,
              q->stats.effective_bits);

        // The kept positions have the top scores.
        std::vector<char> is_out(static_cast<size_t>(R * C), 0);
        for (size_t i = 0; i < S.size(); ++i) is_out[i] = S[i] != 0.0;
        int64_t marked = 0;
        double min_in = 1e30, max_rest = 0;
        std::vector<int32_t> rp(static_cast<size_t>(R + 1));
        std::memcpy(rp.data(), q->companions[0].data.data(), rp.size() * 4);
        std::vector<uint16_t> cols(static_cast<size_t>(nnz));
        std::memcpy(cols.data(), q->companions[1].data.data(), cols.size() * 2);
        std::vector<char> sel(static_cast<size_t>(R * C), 0);
        for (int64_t r = 0; r < R; ++r)
            for (int32_t i = rp[size_t(r)]; i < rp[size_t(r + 1)]; ++i) {
                if (i > rp[size_t(r)]) QVERIFY(cols[size_t(i)] > cols[size_t(i - 1)]);
                sel[size_t(r * C + cols[size_t(i)])] = 1;
                ++marked;
            }
        QCOMPARE(marked, nnz);
        for (int64_t i = 0; i < R * C; ++i) {
            const double v = w[size_t(i)];
            const double s = saliency ? v * v * energy[size_t(i % C)] : std::fabs(v);
            if (sel[size_t(i)]) min_in = std::min(min_in, s);
            else max_rest = std::max(max_rest, s);
        }
        QVERIFY(min_in >= max_rest);
        // 6-bit values in range.
        const std::vector<uint8_t> vals = bytes_of(q->companions[2]);
        for (int64_t i = 0; i < nnz; ++i) QVERIFY(std::abs(note_get6(vals, i)) <= 31);
    }

    // y += S x (the runtime's scalar reference) against (W_deq + S) x computed densely in double.
    void sparseApply() {
        const int64_t R = 96, C = 256;
        const std::vector<float> w = matrix("student_t3", R, C, 3);
        EfQuantOptions o;
        o.bits = 2; o.block = 64; o.outlier_fraction = 0.02;
        auto q = ef_quantize_matrix("w", w, R, C, o);
        QVERIFY(q);
        const EfOutlierView v = q->outliers();
        QVERIFY(!ef_check_outliers(v));
        std::mt19937 rng(9);
        std::normal_distribution<float> N(0, 1);
        std::vector<float> x(static_cast<size_t>(C));
        for (float& e : x) e = N(rng);
        const std::vector<float> wd = *q->blocks.to_f32();
        const std::vector<double> S = dense_s(*q, R, C);
        std::vector<float> y(static_cast<size_t>(R));
        for (int64_t r = 0; r < R; ++r) {
            double acc = 0;
            for (int64_t c = 0; c < C; ++c) acc += double(wd[size_t(r * C + c)]) * x[size_t(c)];
            y[size_t(r)] = float(acc);
        }
        sparse_outliers_apply(y.data(), v, x.data());
        for (int64_t r = 0; r < R; ++r) {
            double want = 0, scale = 0;
            for (int64_t c = 0; c < C; ++c) {
                const double wf = double(wd[size_t(r * C + c)]) + S[size_t(r * C + c)];
                want += wf * x[size_t(c)];
                scale += std::fabs(wf * x[size_t(c)]);
            }
            QVERIFY2(std::fabs(y[size_t(r)] - want) <= 1e-5 * scale + 1e-7,
                     qPrintable(QString("row %1: %2 vs %3").arg(r).arg(y[size_t(r)]).arg(want)));
        }
    }

    void badInput_data() {
        QTest::addColumn<int>("k");
        QTest::addColumn<int>("B");
        QTest::addColumn<int>("cols");
        QTest::addColumn<double>("p");
        QTest::addColumn<bool>("saliency");
        QTest::addColumn<QString>("expect");
        QTest::addRow("B_not_dividing") << 3 << 128 << 96 << 0.005 << false << "does not divide the row length 96";
        QTest::addRow("p_negative") << 3 << 32 << 96 << -0.001 << false << "outside [0, 0.05]";
        QTest::addRow("p_above_5pct") << 3 << 32 << 96 << 0.06 << false << "outside [0, 0.05]";
        QTest::addRow("p_nan") << 3 << 32 << 96 << double(NAN) << false << "outside [0, 0.05]";
        QTest::addRow("cols_over_65536") << 3 << 64 << 65600 << 0.001 << false << "at most 65536 columns";
        QTest::addRow("bits_7") << 7 << 32 << 96 << 0.0 << false << "k in {2, 3, 4, 5, 6, 8}";
        QTest::addRow("block_48") << 3 << 48 << 96 << 0.0 << false << "B in {32, 64, 128, 256}";
        QTest::addRow("saliency_no_energy") << 3 << 32 << 96 << 0.01 << true << "activation energy";
    }
    void badInput() {
        QFETCH(int, k);
        QFETCH(int, B);
        QFETCH(int, cols);
        QFETCH(double, p);
        QFETCH(bool, saliency);
        QFETCH(QString, expect);
        const std::vector<float> w(static_cast<size_t>(2 * cols), 0.5f);
        EfQuantOptions o;
        o.bits = k; o.block = B; o.outlier_fraction = p;
        if (saliency) o.selection = OutlierSelection::Saliency;
        auto q = ef_quantize_matrix("blk.3.ffn_up.weight", w, 2, cols, o);
        QVERIFY(!q);
        QVERIFY2(QString::fromStdString(q.message()).contains(expect), q.message().c_str());
        QVERIFY2(q.message().find("blk.3.ffn_up.weight") != std::string::npos, q.message().c_str());
        // Without outliers, the 16-bit column limit does not apply.
        if (QString(QTest::currentDataTag()) == "cols_over_65536") {
            o.outlier_fraction = 0;
            QVERIFY(ef_quantize_matrix("w", w, 2, cols, o));
        }
    }

    void cancel() {
        const std::vector<float> w = matrix("gaussian", 256, 256, 1);
        Progress p;
        p.cancel();
        EfQuantOptions o;
        auto q = ef_quantize_matrix("w", w, 256, 256, o, p);
        QVERIFY(!q);
        QVERIFY(q.message().find("cancelled") != std::string::npos);
    }

    // A model holding EF tensors and companions: GGUF write/read keeps every byte; inspect reports the
    // bits; @huggingface/gguf parses it or fails clearly (logged).
    void ggufRoundTrip() {
        SynthOptions so;
        so.dim = 128;
        so.n_layers = 2;
        auto m = synth_model(so);
        QVERIFY2(m, m ? "" : m.message().c_str());
        EfModelQuantOptions mo;
        mo.tensor.bits = 3;
        mo.tensor.block = 64;
        mo.tensor.outlier_fraction = 0.01;
        int reports = 0;
        Progress prog([&](double, const std::string&) { ++reports; });
        auto q = ef_quantize_model(*m, mo, prog);
        QVERIFY2(q, q ? "" : q.message().c_str());
        QVERIFY(reports > 0);
        const EfModelBits bits = ef_model_bits(*q);
        QVERIFY(!bits.tensors.empty());
        for (const auto& t : bits.tensors) {
            QCOMPARE(t.code_bits, 3.0);
            QVERIFY(t.nnz > 0);
            QCOMPARE(t.effective_bits, 8.0 * double(t.block_bytes + t.companion_bytes) / double(t.weights));
            QVERIFY(t.effective_bits > 3.0 + 16.0 / 64);
        }
        QTemporaryDir dir;
        const std::string path = (dir.path() + "/ef.gguf").toStdString();
        Status s = save_model(*q, path);
        QVERIFY2(s, s ? "" : s.message().c_str());
        auto back = load_model(path);
        QVERIFY2(back, back ? "" : back.message().c_str());
        QCOMPARE(back->tensors.size(), q->tensors.size());
        for (const Tensor& t : q->tensors) {
            const Tensor* b = back->find(t.name);
            QVERIFY2(b, t.name.c_str());
            QCOMPARE(b->dtype, t.dtype);
            QCOMPARE(b->shape, t.shape);
            QVERIFY2(bytes_of(*b) == bytes_of(t), t.name.c_str());
        }
        for (const auto& t : bits.tensors) {
            const Tensor* w = back->find(t.name);
            auto view = ef_outlier_view(t.name, w->rows(), w->row_length(), ef_find_companions(*back, t.name));
            QVERIFY2(view, view ? "" : view.message().c_str());
            QCOMPARE(view->nnz, t.nnz);
        }
        const ModelSummary sum = summarize(*back);
        const std::string text = summary_to_text(sum, true);
        QVERIFY(text.find("ef3_b64") != std::string::npos);
        QVERIFY(text.find("edgefusion") != std::string::npos);
        const auto js = summary_to_json(sum);
        QVERIFY(js.contains("edgefusion"));
        QCOMPARE(js["edgefusion"]["ef_effective_bits"].get<double>(), bits.ef_effective_bits);

        const auto r = test::run_node_script("gguf_parse.mjs", {QString::fromStdString(path)});
        if (r.exit_code == 0) {
            const QJsonDocument doc = QJsonDocument::fromJson(r.out.toUtf8());
            QVERIFY(doc.isObject());
            const QJsonArray infos = doc.object().value("tensorInfos").toArray();
            QCOMPARE(qsizetype(infos.size()), qsizetype(q->tensors.size()));
            qInfo("@huggingface/gguf parsed the EF file: %lld tensors", static_cast<long long>(infos.size()));
        } else {
            qInfo("@huggingface/gguf rejects the EF file (exit %d): %s", r.exit_code, qPrintable(r.err.trimmed()));
            QVERIFY2(!r.err.trimmed().isEmpty(), "@huggingface/gguf failed without a message");
        }
    }

    // Corrupt companions are reported, not trusted.
    void corruptCompanions() {
        const std::vector<float> w = matrix("student_t3", 8, 64, 2);
        EfQuantOptions o;
        o.block = 64; o.outlier_fraction = 0.05;
        auto q = ef_quantize_matrix("w", w, 8, 64, o);
        QVERIFY(q);
        EfOutlierView v = q->outliers();
        std::vector<int32_t> rp(v.rowptr, v.rowptr + 9);
        rp[3] = rp[4] + 1;
        v.rowptr = rp.data();
        QVERIFY(ef_check_outliers(v).has_value());
        std::vector<uint16_t> c(v.col, v.col + v.nnz);
        v = q->outliers();
        c[0] = 64;
        v.col = c.data();
        QVERIFY(ef_check_outliers(v).has_value());
    }

    // The numbers for the report: Student-t(3) 1024 x 1024 and a stories260K matrix, k = 2, 3, 4.
    void qualityTable() {
        const int64_t R = 1024, C = 1024;
        const std::vector<float> w = matrix("student_t3", R, C, 42);
        for (int k : {2, 3, 4})
            for (double p : {0.0, 0.005}) {
                EfQuantOptions o;
                o.bits = k; o.block = 128; o.outlier_fraction = p;
                QElapsedTimer t;
                t.start();
                auto q = ef_quantize_matrix("t3", w, R, C, o);
                QVERIFY(q);
                o.search_steps = 0;
                auto plain = ef_quantize_matrix("t3", w, R, C, o);
                QVERIFY(plain);
                qInfo("student_t3 1024x1024 k=%d B=128 p=%.3f: RMSE %.5g (plain RTN %.5g), max err %.4g, code %g, effective %.4f bits, %lld ms",
                      k, p, q->stats.rmse, plain->stats.rmse, q->stats.max_abs_err, q->stats.code_bits,
                      q->stats.effective_bits, static_cast<long long>(t.elapsed()));
            }
        EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
        auto m = load_model(stories.toStdString());
        QVERIFY2(m, m ? "" : m.message().c_str());
        const Tensor* t = m->find("blk.0.ffn_up.weight");
        if (!t) t = m->find("blk.0.attn_q.weight");
        QVERIFY(t);
        const std::vector<float> f = *t->to_f32();
        for (int k : {2, 3, 4})
            for (double p : {0.0, 0.005}) {
                EfQuantOptions o;
                o.bits = k; o.block = 32; o.outlier_fraction = p;
                auto q = ef_quantize_matrix(t->name, f, t->rows(), t->row_length(), o);
                QVERIFY2(q, q ? "" : q.message().c_str());
                qInfo("stories260K %s %s k=%d B=32 p=%.3f: RMSE %.5g, effective %.4f bits", t->name.c_str(),
                      shape_to_string(t->shape).c_str(), k, p, q->stats.rmse, q->stats.effective_bits);
            }
    }
};

QTEST_GUILESS_MAIN(TestEfFormat)
#include "test_ef_format.moc"
