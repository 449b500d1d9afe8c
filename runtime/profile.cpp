#include "runtime/profile.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>

#include "runtime/sampler.h"

namespace ef {

SpeedStats speed_stats(int n_tokens, std::vector<double> xs) {
    SpeedStats s;
    s.n_tokens = n_tokens;
    s.samples = std::move(xs);
    if (s.samples.empty()) return s;
    s.mean = std::accumulate(s.samples.begin(), s.samples.end(), 0.0) / double(s.samples.size());
    if (s.samples.size() > 1) {
        double ss = 0.0;
        for (double x : s.samples) ss += (x - s.mean) * (x - s.mean);
        s.stddev = std::sqrt(ss / double(s.samples.size() - 1));
    }
    return s;
}

namespace {

using Clock = std::chrono::steady_clock;

std::vector<int32_t> random_tokens(const Session& s, int n, uint64_t seed) {
    Rng rng(seed);
    const auto vocab = uint64_t(std::max<int64_t>(1, s.model().config.vocab_size));
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = int32_t(rng.next() % vocab);
    return t;
}

Status check_bench_args(const Session& s, int n, int reps, const char* what) {
    if (n <= 0) return make_error(std::string(what) + ": the token count must be positive, got " + std::to_string(n));
    if (reps <= 0) return make_error(std::string(what) + ": repetitions must be positive, got " + std::to_string(reps));
    if (n > s.max_positions())
        return make_error(std::string(what) + ": " + std::to_string(n) + " tokens do not fit the context of " +
                          std::to_string(s.max_positions()));
    return {};
}

// One run of `body` per repetition after a warm-up; tokens/s of each.
template <class F>
Result<SpeedStats> timed_runs(int n, int reps, Progress& progress, F body) {
    std::vector<double> tps;
    for (int r = -1; r < reps; ++r) {  // r == -1: warm-up, not counted
        if (progress.cancelled()) return make_error("cancelled");
        const auto t0 = Clock::now();
        EF_TRY_STATUS(body());
        const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
        if (r >= 0) tps.push_back(double(n) / std::max(sec, 1e-9));
        progress.report(double(r + 2) / double(reps + 1));
    }
    return speed_stats(n, std::move(tps));
}

}  // namespace

Result<SpeedStats> bench_prefill(Session& s, int n, int reps, uint64_t seed, Progress& progress) {
    EF_TRY_STATUS(check_bench_args(s, n, reps, "prefill"));
    const auto tokens = random_tokens(s, n, seed);
    return timed_runs(n, reps, progress, [&]() -> Status {
        s.reset();
        auto l = s.prefill(tokens);
        if (!l) return l.error();
        return {};
    });
}

Result<SpeedStats> bench_decode(Session& s, int n, int reps, uint64_t seed, Progress& progress) {
    EF_TRY_STATUS(check_bench_args(s, n, reps, "decode"));
    const auto tokens = random_tokens(s, n, seed);
    return timed_runs(n, reps, progress, [&]() -> Status {
        s.reset();
        for (int32_t t : tokens) {
            auto l = s.eval(t);
            if (!l) return l.error();
        }
        return {};
    });
}

namespace {
uint64_t status_kb(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    const size_t klen = std::strlen(key);
    while (std::getline(f, line)) {
        if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':') {
            unsigned long long kb = 0;
            if (std::sscanf(line.c_str() + klen + 1, "%llu", &kb) == 1) return uint64_t(kb) * 1024;
        }
    }
    return 0;
}
}  // namespace

uint64_t peak_rss_bytes() { return status_kb("VmHWM"); }
uint64_t current_rss_bytes() { return status_kb("VmRSS"); }

std::vector<LayerPath> layer_paths(const Session& s, Routing routing) {
    const Model& m = s.model();
    std::vector<LayerPath> out(m.layers.size());
    for (size_t il = 0; il < m.layers.size(); ++il) {
        const LayerDesc& d = m.layers[il];
        LayerPath& p = out[il];
        p.ffn = d.ffn == FfnKind::SwiGLU;
        const float g = il < s.gates().size() ? s.gates()[il] : 1.0f;
        switch (d.mixer) {
            case MixerKind::Attention: p.attention = true; break;
            case MixerKind::Mamba1:
            case MixerKind::Mamba2: p.ssm = d.mixer; break;
            case MixerKind::Routed:
                p.attention = routing == Routing::Soft || g >= 0.5f;
                if (routing == Routing::Soft || g < 0.5f) p.ssm = d.ssm_branch;
                break;
        }
    }
    return out;
}

uint64_t kv_cache_bytes(const Model& m, const std::vector<LayerPath>& path, int64_t n_ctx) {
    const auto& a = m.config.attn;
    uint64_t total = 0;
    for (const auto& p : path)
        if (p.attention) total += 2ull * uint64_t(a.n_kv_heads * a.head_dim) * uint64_t(n_ctx) * sizeof(float);
    return total;
}

uint64_t ssm_state_bytes(const Model& m, const std::vector<LayerPath>& path) {
    const auto& sc = m.config.ssm;
    uint64_t total = 0;
    for (const auto& p : path) {
        if (p.ssm == MixerKind::Mamba1)
            total += uint64_t(sc.d_inner * (sc.d_conv - 1) + sc.d_inner * sc.d_state) * sizeof(float);
        else if (p.ssm == MixerKind::Mamba2)
            total += uint64_t((sc.d_inner + 2 * sc.n_groups * sc.d_state) * (sc.d_conv - 1) + sc.d_inner * sc.d_state) *
                     sizeof(float);
    }
    return total;
}

uint64_t decode_weight_bytes(const Model& m, const std::vector<LayerPath>& path) {
    const bool tied = m.find("output.weight") == nullptr;
    uint64_t total = 0;
    for (const Tensor& t : m.tensors) {
        if (t.name == "token_embd.weight") {
            total += tied ? t.nbytes() : t.nbytes() / uint64_t(std::max<int64_t>(1, m.config.vocab_size));
            continue;
        }
        // "blk.<i>.<rest>": skip the matrices of a routed layer's branch that does not run.
        if (t.name.rfind("blk.", 0) == 0) {
            const size_t dot = t.name.find('.', 4);
            const size_t il = size_t(std::strtoull(t.name.c_str() + 4, nullptr, 10));
            if (dot != std::string::npos && il < path.size() && il < m.layers.size() &&
                m.layers[il].mixer == MixerKind::Routed) {
                const std::string rest = t.name.substr(dot + 1);
                const bool attn = rest.rfind("attn_q", 0) == 0 || rest.rfind("attn_k", 0) == 0 ||
                                  rest.rfind("attn_v", 0) == 0 || rest.rfind("attn_output", 0) == 0;
                if (attn && !path[il].attention) continue;
                if (rest.rfind("ssm_", 0) == 0 && path[il].ssm == MixerKind::Attention) continue;
            }
        }
        total += t.nbytes();
    }
    return total;
}

double flops_per_token(const Model& m, const std::vector<LayerPath>& path, int64_t n_past) {
    const ModelConfig& c = m.config;
    auto mat = [&](const std::string& name) -> double {
        const Tensor* t = m.find(name);
        return t ? 2.0 * double(t->numel()) : 0.0;
    };
    double f = 0.0;
    for (size_t il = 0; il < path.size(); ++il) {
        const auto& p = path[il];
        const std::string b = "blk." + std::to_string(il) + ".";
        if (p.attention) {
            f += mat(b + "attn_q.weight") + mat(b + "attn_k.weight") + mat(b + "attn_v.weight") + mat(b + "attn_output.weight");
            f += 4.0 * double(c.attn.n_heads * c.attn.head_dim) * double(n_past + 1);
        }
        if (p.ssm == MixerKind::Mamba1) {
            f += mat(b + "ssm_in.weight") + mat(b + "ssm_x.weight") + mat(b + "ssm_dt.weight") + mat(b + "ssm_out.weight");
            f += 6.0 * double(c.ssm.d_inner * c.ssm.d_state) + 2.0 * double(c.ssm.d_inner * c.ssm.d_conv);
        } else if (p.ssm == MixerKind::Mamba2) {
            f += mat(b + "ssm_in.weight") + mat(b + "ssm_out.weight");
            const int64_t conv_dim = c.ssm.d_inner + 2 * c.ssm.n_groups * c.ssm.d_state;
            f += 6.0 * double(c.ssm.d_inner * c.ssm.d_state) + 2.0 * double(conv_dim * c.ssm.d_conv);
        }
        if (p.ffn) f += mat(b + "ffn_gate.weight") + mat(b + "ffn_up.weight") + mat(b + "ffn_down.weight");
    }
    f += 2.0 * double(c.vocab_size) * double(c.dim);  // output head (tied or not)
    return f;
}

}  // namespace ef
