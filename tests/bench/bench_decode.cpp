// Decode benchmark (label bench, not run in CI): tokens/s of ef::Session::eval on synth llama
// models (dim 512, 8 layers, vocab 32000; F32, Q8_0, Q4_K) and on stories260K (../shared),
// for each matvec path (reference: dequantize + double; scalar kernels; SIMD kernels) on 1 and
// 2 threads. Each run: a 4-token prompt, then N single-token evals timed (median of 3 runs).
//   bench_decode [N=32] [fast]     ("fast": only the SIMD columns)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/formats/format.h"
#include "core/synth.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/kernels.h"
#include "runtime/session.h"
#include "tests/support/test_support.h"

using namespace ef;
using Clock = std::chrono::steady_clock;

namespace {

double tokens_per_s(const Model& m, rt::Kernels k, int threads, int n) {
    SessionOptions o;
    o.kernels = k;
    o.threads = threads;
    auto s = Session::create(m, o);
    if (!s) {
        std::fprintf(stderr, "session: %s\n", s.message().c_str());
        std::exit(1);
    }
    std::vector<double> runs;
    for (int rep = 0; rep < 3; ++rep) {
        s->reset();
        const int32_t prompt[] = {1, 300, 301, 302};
        if (!s->prefill(prompt)) std::exit(1);
        const auto t0 = Clock::now();
        int32_t tok = 303;
        for (int i = 0; i < n; ++i) {
            auto l = s->eval(tok);
            if (!l) std::exit(1);
            tok = 260 + argmax(*l) % 200;  // any valid id; the work per token is the same
        }
        runs.push_back(double(n) / std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(runs.begin(), runs.end());
    return runs[1];
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::max(1, std::atoi(argv[1])) : 32;
    const bool fast_only = argc > 2 && std::string(argv[2]) == "fast";
    std::printf("CPU features: %s; hardware threads: %u\n", rt::cpu_features_string(rt::cpu_features()).c_str(),
                std::thread::hardware_concurrency());
    struct Entry {
        std::string name;
        Model model;
    };
    std::vector<Entry> models;
    for (DType t : {DType::F32, DType::Q8_0, DType::Q4_K}) {
        SynthOptions so;
        so.arch = "llama";
        so.dim = 512;
        so.n_layers = 8;
        so.vocab = 32000;
        so.type = t;
        so.context_length = 256;
        auto m = synth_model(so);
        if (!m) {
            std::fprintf(stderr, "synth: %s\n", m.message().c_str());
            return 1;
        }
        models.push_back({"llama d512 L8 " + std::string(dtype_name(t)), std::move(*m)});
    }
    QString err;
    const QString stories = test::shared_path("models/stories260K.bin", &err);
    if (!stories.isEmpty()) {
        auto m = load_model(stories.toStdString());
        if (m) models.push_back({"stories260K f32", std::move(*m)});
    } else {
        std::printf("(stories260K skipped: %s)\n", err.toStdString().c_str());
    }

    std::printf("\ndecode tokens/s (median of 3 x %d tokens)\n", n);
    std::printf("%-22s %12s %12s %12s %12s %12s %12s\n", "model", "ref 1t", "ref 2t", "scalar 1t", "scalar 2t", "simd 1t",
                "simd 2t");
    for (const Entry& e : models) {
        std::printf("%-22s", e.name.c_str());
        for (rt::Kernels k : {rt::Kernels::Reference, rt::Kernels::Scalar, rt::Kernels::Fast})
            for (int threads : {1, 2}) {
                if (fast_only && k != rt::Kernels::Fast) {
                    std::printf(" %12s", "-");
                    continue;
                }
                std::printf(" %12.1f", tokens_per_s(e.model, k, threads, n));
                std::fflush(stdout);
            }
        std::printf("\n");
    }
    return 0;
}
