// The bit-allocation solver (quant/bit_alloc.h) against exhaustive enumeration on random instances
// (pins, both budget kinds, ties, budgets at and below the minimum), and the byte formula against
// what ef_quantize_matrix actually stores.
#include <QtTest>
#include <cmath>
#include <random>

#include "quant/bit_alloc.h"
#include "quant/ef_quantize.h"

using namespace ef;

namespace {

// Random instance: byte sizes grow with the width like the EF format's (not always strictly:
// equal sizes and losses appear when `ties`), losses are arbitrary (not monotone) so the solver
// cannot rely on shape.
std::vector<AllocUnit> random_units(std::mt19937& rng, int n, int m, bool ties, bool pins) {
    std::vector<AllocUnit> units;
    for (int u = 0; u < n; ++u) {
        AllocUnit a;
        a.name = "blk." + std::to_string(u);
        a.tensors = {a.name + ".w"};
        a.weights = 64 * int64_t(1 + rng() % 8);
        const int k = 1 + int(rng() % unsigned(m));
        for (int i = 0; i < k; ++i) {
            AllocOption o;
            o.bits = 2 + i;
            o.bytes = ties ? uint64_t(8 * (1 + rng() % 4)) : uint64_t(a.weights * (2 + i) / 8 + rng() % 13);
            o.loss = ties ? double(rng() % 3) : std::ldexp(double(rng() % 100000), -12) + (rng() % 7 == 0 ? 1.0 : 0.0);
            a.options.push_back(o);
        }
        if (pins && rng() % 3 == 0) a.pin = int(rng() % unsigned(k));
        units.push_back(std::move(a));
    }
    return units;
}

uint64_t sum_bytes(const std::vector<AllocUnit>& us, bool smallest) {
    uint64_t s = 0;
    for (const auto& u : us) {
        uint64_t v = smallest ? UINT64_MAX : 0;
        for (int i = 0; i < int(u.options.size()); ++i) {
            if (u.pin && *u.pin != i) continue;
            v = smallest ? std::min(v, u.options[size_t(i)].bytes) : std::max(v, u.options[size_t(i)].bytes);
        }
        s += v;
    }
    return s;
}

}  // namespace

class TestBitAlloc : public QObject {
    Q_OBJECT
private slots:
    void matchesBruteForce_data() {
        QTest::addColumn<int>("seed");
        QTest::addColumn<int>("units");
        QTest::addColumn<int>("options");
        QTest::addColumn<bool>("ties");
        QTest::addColumn<bool>("pins");
        QTest::addColumn<int>("kind");
        int row = 0;
        for (int n : {1, 3, 5, 7})
            for (int m : {1, 3, 5})
                for (bool ties : {false, true})
                    for (bool pins : {false, true})
                        for (int kind : {0, 1, 2}) {
                            const char* kn[] = {"_bits", "_bytes", "_codebits"};
                            const std::string name = "n" + std::to_string(n) + "_m" + std::to_string(m) + (ties ? "_ties" : "") +
                                                     (pins ? "_pins" : "") + kn[kind];
                            QTest::newRow(name.c_str()) << (1000 + row++) << n << m << ties << pins << kind;
                        }
    }
    void matchesBruteForce() {
        QFETCH(int, seed);
        QFETCH(int, units);
        QFETCH(int, options);
        QFETCH(bool, ties);
        QFETCH(bool, pins);
        QFETCH(int, kind);
        const bool bytesBudget = kind == 1, codeBudget = kind == 2;
        std::mt19937 rng{unsigned(seed)};
        for (int trial = 0; trial < 20; ++trial) {
            auto us = random_units(rng, units, options, ties, pins);
            int64_t w = 0;
            for (const auto& u : us) w += u.weights;
            if (codeBudget)  // the code-bit cost k * weights plays the part of the bytes
                for (auto& u : us)
                    for (auto& o : u.options) o.bytes = uint64_t(o.bits) * uint64_t(u.weights);
            const uint64_t lo = sum_bytes(us, true), hi = sum_bytes(us, false);
            // Budgets from below the minimum to above the maximum.
            const uint64_t span = hi - lo + 4;
            const uint64_t target = lo - std::min<uint64_t>(lo, 2) + rng() % (span + 2);
            AllocBudget b;
            if (bytesBudget) {
                b.kind = BudgetKind::TotalBytes;
                b.fixed_bytes = rng() % 1000;
                b.total_bytes = target + b.fixed_bytes;
            } else if (codeBudget) {
                b.kind = BudgetKind::AverageCodeBits;
                b.average_bits = double(target) / double(w);
            } else {
                b.kind = BudgetKind::AverageBits;
                b.average_bits = 8.0 * double(target) / double(w);
            }
            auto dp = allocate_bits(us, b);
            auto bf = allocate_bits_brute_force(us, b);
            QCOMPARE(dp.ok(), bf.ok());
            if (!dp.ok()) {
                QVERIFY2(dp.message().find("below the minimum possible") != std::string::npos, dp.message().c_str());
                continue;
            }
            QCOMPARE(dp->loss, bf->loss);  // same summation order: bitwise equal
            QCOMPARE(dp->unit_bytes, bf->unit_bytes);  // ties in loss: fewest bytes
            QVERIFY(dp->unit_bytes <= dp->capacity);
            if (bytesBudget) QVERIFY(dp->total_bytes <= b.total_bytes);
            else if (codeBudget) QVERIFY(dp->average_code_bits <= b.average_bits * (1 + 1e-12));
            else QVERIFY(dp->average_bits <= b.average_bits * (1 + 1e-12));
            double loss = 0;
            uint64_t bytes = 0;
            for (size_t i = 0; i < us.size(); ++i) {
                if (us[i].pin) QCOMPARE(dp->choice[i], *us[i].pin);
                loss += us[i].options[size_t(dp->choice[i])].loss;
                bytes += us[i].options[size_t(dp->choice[i])].bytes;
            }
            QCOMPARE(loss, dp->loss);
            QCOMPARE(bytes, dp->unit_bytes);
        }
    }

    void budgetBelowMinimumIsAClearError_data() {
        QTest::addColumn<bool>("bytesBudget");
        QTest::newRow("average bits") << false;
        QTest::newRow("memory bytes") << true;
    }
    void budgetBelowMinimumIsAClearError() {
        QFETCH(bool, bytesBudget);
        std::vector<AllocUnit> us(2);
        for (int i = 0; i < 2; ++i) {
            us[size_t(i)].name = "u" + std::to_string(i);
            us[size_t(i)].weights = 1000;
            us[size_t(i)].options = {{2, 300, 1.0}, {4, 550, 0.1}};
        }
        us[1].pin = 1;  // the minimum counts the pin: 300 + 550 = 850 bytes = 3.4 bits per weight
        AllocBudget b;
        if (bytesBudget) {
            b.kind = BudgetKind::TotalBytes;
            b.fixed_bytes = 100;
            b.total_bytes = 949;
        } else {
            b.average_bits = 3.39;
        }
        auto r = allocate_bits(us, b);
        QVERIFY(!r.ok());
        QVERIFY2(r.message().find("below the minimum possible") != std::string::npos, r.message().c_str());
        QVERIFY2(r.message().find(bytesBudget ? "950 bytes" : "3.4000 effective bits") != std::string::npos, r.message().c_str());
        // Exactly the minimum is feasible.
        if (bytesBudget) b.total_bytes = 950;
        else b.average_bits = 3.4;
        auto ok = allocate_bits(us, b);
        QVERIFY2(ok.ok(), ok.ok() ? "" : ok.message().c_str());
        QCOMPARE(ok->choice, (std::vector<int>{0, 1}));
    }

    void badInput() {
        AllocBudget b;
        b.average_bits = 4;
        QVERIFY(!allocate_bits({}, b).ok());
        std::vector<AllocUnit> us(1);
        us[0].name = "u";
        us[0].weights = 10;
        QVERIFY(!allocate_bits(us, b).ok());  // no options
        us[0].options = {{2, 3, 1.0}};
        us[0].pin = 1;
        QVERIFY(!allocate_bits(us, b).ok());  // pin out of range
        us[0].pin.reset();
        us[0].options[0].loss = std::nan("");
        QVERIFY(!allocate_bits(us, b).ok());
        us[0].options[0].loss = 1;
        b.average_bits = -1;
        QVERIFY(!allocate_bits(us, b).ok());
    }

    void stateLimitIsAnErrorNotAnApproximation() {
        std::mt19937 rng(7);
        auto us = random_units(rng, 12, 5, false, false);
        for (auto& u : us)
            while (u.options.size() < 5) u.options.push_back({int(u.options.size()) + 2, u.options.back().bytes + 1 + rng() % 50, 0.5});
        AllocBudget b;
        b.kind = BudgetKind::TotalBytes;
        b.total_bytes = sum_bytes(us, false);
        auto r = allocate_bits(us, b, 50);
        QVERIFY(!r.ok());
        QVERIFY2(r.message().find("states") != std::string::npos, r.message().c_str());
        QVERIFY(allocate_bits(us, b).ok());
    }

    // The solver's byte sizes are the quantizer's: blocks + scales/offsets + the four CSR companions.
    void effectiveBytesMatchTheQuantizer_data() {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("block");
        QTest::addColumn<bool>("affine");
        QTest::addColumn<double>("p");
        QTest::newRow("3b128 p0.5%") << 48 << 256 << 3 << 128 << false << 0.005;
        QTest::newRow("2b32 affine p1%") << 33 << 96 << 2 << 32 << true << 0.01;
        QTest::newRow("5b64 p0") << 17 << 64 << 5 << 64 << false << 0.0;
        QTest::newRow("8b256 p5%") << 9 << 512 << 8 << 256 << false << 0.05;
        QTest::newRow("6b64 tiny p (nnz 0)") << 4 << 64 << 6 << 64 << false << 0.001;
        QTest::newRow("4b64 p0.5% odd nnz") << 31 << 192 << 4 << 64 << true << 0.005;
    }
    void effectiveBytesMatchTheQuantizer() {
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, bits);
        QFETCH(int, block);
        QFETCH(bool, affine);
        QFETCH(double, p);
        std::mt19937 rng{unsigned(rows * cols)};
        std::normal_distribution<float> nd;
        std::vector<float> w(size_t(rows) * size_t(cols));
        for (auto& v : w) v = nd(rng);
        EfQuantOptions o;
        o.bits = bits;
        o.block = block;
        o.affine = affine;
        o.outlier_fraction = p;
        auto q = ef_quantize_matrix("t.weight", w, rows, cols, o);
        QVERIFY2(q.ok(), q.ok() ? "" : q.message().c_str());
        uint64_t stored = q->blocks.nbytes();
        for (const auto& c : q->companions) stored += c.nbytes();
        QCOMPARE(ef_effective_bytes(rows, cols, bits, block, affine, p), stored);
        QCOMPARE(ef_effective_bytes(rows, cols, bits, block, affine, p), q->stats.bytes);
    }
};

QTEST_APPLESS_MAIN(TestBitAlloc)
#include "test_bit_alloc.moc"
