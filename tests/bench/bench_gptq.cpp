// GPTQ benchmark (label bench, not run in CI): one 2048 x 2048 matrix (Student-t weights, correlated
// activations X = Z M), EF 3-bit and 4-bit blocks of 128, on 1 and 2 threads: wall time of the Hessian
// accumulation, of GPTQ (Hessian inversion included) and of plain RTN, and the output error
// ||(W - Q) X^T||_F of each (measured on a 256-row sample of X).
//   bench_gptq [--size N] [--samples T]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant/ef_quantize.h"
#include "quant/gptq.h"

using namespace ef;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double output_error(const std::vector<float>& w, const std::vector<float>& q, const std::vector<float>& x, int64_t rows,
                    int64_t cols, int64_t n) {
    double e = 0;
    std::vector<double> d(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) d[size_t(c)] = double(w[size_t(r * cols + c)]) - q[size_t(r * cols + c)];
        for (int64_t t = 0; t < n; ++t) {
            double y = 0;
            for (int64_t c = 0; c < cols; ++c) y += d[size_t(c)] * x[size_t(t * cols + c)];
            e += y * y;
        }
    }
    return std::sqrt(e);
}
}  // namespace

int main(int argc, char** argv) {
    int64_t n = 2048, samples = 2560;
    for (int i = 1; i + 1 < argc; ++i) {
        if (!std::strcmp(argv[i], "--size")) n = std::stoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--samples")) samples = std::stoll(argv[++i]);
    }
    const int64_t R = n, C = n;
    std::mt19937 rng(1234);
    std::normal_distribution<float> nd;
    std::student_t_distribution<float> td(3.0f);
    std::vector<float> w(static_cast<size_t>(R * C)), m(static_cast<size_t>(C * C)), sc(static_cast<size_t>(C));
    for (auto& v : w) v = 0.02f * td(rng);
    for (auto& v : m) v = nd(rng) / std::sqrt(float(C));
    for (int64_t c = 0; c < C; ++c) m[size_t(c * C + c)] += 1.0f;
    for (auto& v : sc) v = std::exp(0.7f * nd(rng));
    std::printf("GPTQ benchmark: %lld x %lld weights, %lld calibration rows\n", (long long)R, (long long)C, (long long)samples);

    HessianAccumulator acc(C);
    double t_acc = 0;
    std::vector<float> sample;  // the first 256 rows of X, for the output error
    const int64_t chunk = 256;
    std::vector<float> x(static_cast<size_t>(chunk * C)), z(static_cast<size_t>(C));
    for (int64_t t0 = 0; t0 < samples; t0 += chunk) {
        const int64_t nr = std::min(chunk, samples - t0);
        std::fill(x.begin(), x.end(), 0.0f);
        for (int64_t t = 0; t < nr; ++t) {
            for (int64_t c = 0; c < C; ++c) z[size_t(c)] = sc[size_t(c)] * nd(rng);
            float* xr = x.data() + t * C;
            for (int64_t k = 0; k < C; ++k) {
                const float zk = z[size_t(k)];
                const float* mk = m.data() + k * C;
                for (int64_t c = 0; c < C; ++c) xr[c] += zk * mk[c];
            }
        }
        if (sample.empty()) sample.assign(x.begin(), x.begin() + nr * C);
        const auto ta = Clock::now();
        if (!acc.add(std::span<const float>(x).first(size_t(nr * C)), nr).ok()) return 1;
        t_acc += seconds_since(ta);
    }
    auto h = acc.finish();
    if (!h) return 1;
    std::printf("Hessian accumulation (%lld rows): %.2f s\n\n", (long long)samples, t_acc);
    const int64_t ns = int64_t(sample.size()) / C;
    {  // GPTQ of one row: nearly all of it is the Hessian's inversion (two Cholesky factorizations)
        GptqOptions o;
        o.ef.threads = 1;
        const auto t0 = Clock::now();
        auto g = gptq_quantize_matrix("row", std::span<const float>(w).first(size_t(C)), 1, C, *h, o);
        if (!g) return 1;
        std::printf("Hessian inversion (GPTQ of a single row): %.2f s\n\n", seconds_since(t0));
    }

    std::printf("| format | act_order | threads | GPTQ s | RTN s | out err GPTQ | out err RTN | ratio |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (int bits : {3, 4})
        for (bool ao : {false, true})
            for (int threads : {1, 2}) {
                GptqOptions o;
                o.ef.bits = bits;
                o.ef.block = 128;
                o.ef.outlier_fraction = 0.0;
                o.ef.threads = threads;
                o.act_order = ao;
                auto t0 = Clock::now();
                auto g = gptq_quantize_matrix("w", w, R, C, *h, o);
                const double tg = seconds_since(t0);
                t0 = Clock::now();
                auto r = ef_quantize_matrix("w", w, R, C, o.ef);
                const double tr = seconds_since(t0);
                if (!g || !r) {
                    std::printf("error: %s\n", !g ? g.message().c_str() : r.message().c_str());
                    return 1;
                }
                const double eg = output_error(w, *gptq_dequantize(*g), sample, R, C, std::min<int64_t>(ns, 64));
                const double er = output_error(w, *ef_dequantize_matrix(*r), sample, R, C, std::min<int64_t>(ns, 64));
                std::printf("| ef%d_b128 | %d | %d | %.2f | %.2f | %.3f | %.3f | %.3f |\n", bits, int(ao), threads, tg, tr, eg, er,
                            eg / er);
                std::fflush(stdout);
            }
    return 0;
}
