// bench (llama-bench's table: ppN and tgN tests, t/s mean ± std over repetitions) and profile
// (speed, memory, FLOPs per token, time per layer and per op kind).
#include <cstdio>
#include <string>

#include "app/runner/runner.h"
#include "runtime/kernels/kernels.h"
#include "runtime/profile.h"

namespace ef::run {

namespace {

struct SpeedArgs {
    int pp = 0, tg = 0, reps = 0;
};

int read_speed_args(const char* cmd, const cli::Args& a, SpeedArgs def, SpeedArgs& out) {
    auto pp = a.get_int("--pp", def.pp, 0, 1 << 20);
    auto tg = a.get_int("--tg", def.tg, 0, 1 << 20);
    auto reps = a.get_int("--repetitions", def.reps, 1, 1000);
    if (!pp) return fail(cmd, pp.message(), kUsage);
    if (!tg) return fail(cmd, tg.message(), kUsage);
    if (!reps) return fail(cmd, reps.message(), kUsage);
    out = {int(*pp), int(*tg), int(*reps)};
    if (out.pp == 0 && out.tg == 0) return fail(cmd, "nothing to measure: --pp and --tg are both 0", kUsage);
    return 0;
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string samples_json(const SpeedStats& s) {
    std::string o = "[";
    for (size_t i = 0; i < s.samples.size(); ++i) o += (i ? ", " : "") + fmt("%.6g", s.samples[i]);
    return o + "]";
}

std::string speed_json(const SpeedStats& s) {
    return "{\"n_tokens\": " + std::to_string(s.n_tokens) + ", \"avg_ts\": " + fmt("%.6g", s.mean) +
           ", \"stddev_ts\": " + fmt("%.6g", s.stddev) + ", \"samples_ts\": " + samples_json(s) + "}";
}

// The SIMD kernel set the model's main weight type runs on ("avx512", "avx2", "neon", "scalar").
std::string main_kernel_isa(const Model& m) {
    DType main = DType::F32;
    uint64_t best = 0;
    for (const auto& t : m.tensors)
        if (t.shape.size() >= 2 && t.nbytes() > best) {
            best = t.nbytes();
            main = t.dtype;
        }
    const auto* kt = rt::kernels::kernel_traits(main);
    return kt ? std::string(rt::kernels::isa_name(kt->best_isa)) : "reference";
}

}  // namespace

int run_bench(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "bench";
    cli::Args a;
    if (!parse(cmd, argv,
               {{"--pp", "-p", true, "prompt tokens for the prefill test (default 512; 0 = skip)"},
                {"--tg", "-n", true, "tokens for the decode test (default 128; 0 = skip)"},
                {"--repetitions", "-r", true, "repetitions (default 5)"},
                {"--json", "", false, "print JSON"},
                {"--output", "-o", true, "md (default) or json, as llama-bench's -o"}},
               a))
        return kUsage;
    const std::string output = a.has("--json") ? "json" : a.get("--output").value_or("md");
    if (output != "md" && output != "json") return fail(cmd, "-o: expected md or json, got '" + output + "'", kUsage);
    SpeedArgs sa;
    if (int rc = read_speed_args(cmd, a, {512, 128, 5}, sa)) return rc;
    Loaded L;
    if (int rc = load(cmd, a, L)) return rc;
    const Model& m = *L.model;
    SessionOptions so;
    so.routing = L.routing;
    so.threads = L.threads;
    auto s = Session::create(m, so);
    if (!s) return fail(cmd, s.message());

    struct Row {
        std::string test;
        int n_prompt = 0, n_gen = 0;
        SpeedStats st;
    };
    std::vector<Row> rows;
    if (sa.pp > 0) {
        auto r = bench_prefill(*s, sa.pp, sa.reps, 1, progress);
        if (!r) return fail(cmd, r.message());
        rows.push_back({"pp" + std::to_string(sa.pp), sa.pp, 0, *r});
    }
    if (sa.tg > 0) {
        auto r = bench_decode(*s, sa.tg, sa.reps, 2, progress);
        if (!r) return fail(cmd, r.message());
        rows.push_back({"tg" + std::to_string(sa.tg), 0, sa.tg, *r});
    }

    const std::string label = model_label(m);
    if (output == "json") {
        // llama-bench's fields, then memory: the session's context, its KV cache and SSM state, the
        // weight bytes one decode step reads, this process's peak RSS, and the kernel ISA in use.
        const auto path = layer_paths(*s, L.routing);
        const uint64_t kv = kv_cache_bytes(m, path, s->max_positions()), ssm = ssm_state_bytes(m, path);
        const std::string isa = main_kernel_isa(m);
        std::printf("[\n");
        for (size_t i = 0; i < rows.size(); ++i) {
            const Row& r = rows[i];
            std::printf("  {\"model_filename\": \"%s\", \"model_type\": \"%s\", \"model_size\": %llu, \"model_n_params\": %lld, "
                        "\"n_threads\": %d, \"test\": \"%s\", \"n_prompt\": %d, \"n_gen\": %d, \"avg_ts\": %.6g, "
                        "\"stddev_ts\": %.6g, \"samples_ts\": %s, \"n_ctx\": %lld, \"kv_cache_bytes\": %llu, "
                        "\"ssm_state_bytes\": %llu, \"decode_weight_bytes\": %llu, \"peak_rss_bytes\": %llu, "
                        "\"kernel_isa\": \"%s\"}%s\n",
                        json_escape(m.source_path).c_str(), json_escape(label).c_str(),
                        (unsigned long long)m.weight_bytes(), (long long)m.parameter_count(), L.threads, r.test.c_str(),
                        r.n_prompt, r.n_gen, r.st.mean, r.st.stddev,
                        samples_json(r.st).c_str(), (long long)s->max_positions(), (unsigned long long)kv,
                        (unsigned long long)ssm, (unsigned long long)decode_weight_bytes(m, path),
                        (unsigned long long)peak_rss_bytes(), isa.c_str(), i + 1 < rows.size() ? "," : "");
        }
        std::printf("]\n");
        return 0;
    }
    std::printf("| model | size | params | backend | threads | test | t/s |\n");
    std::printf("| ----- | ---: | -----: | ------- | ------: | ---: | --: |\n");
    for (const Row& r : rows)
        std::printf("| %s | %s | %s | CPU | %d | %s | %.2f ± %.2f |\n", label.c_str(), human_bytes(m.weight_bytes()).c_str(),
                    human_count(m.parameter_count()).c_str(), L.threads, r.test.c_str(), r.st.mean, r.st.stddev);
    return 0;
}

int run_profile(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "profile";
    cli::Args a;
    if (!parse(cmd, argv,
               {{"--pp", "-p", true, "prompt tokens for the prefill test (default min(128, context))"},
                {"--tg", "-n", true, "tokens for the decode test (default min(64, context))"},
                {"--repetitions", "-r", true, "repetitions (default 3)"},
                {"--ctx-size", "-c", true, "context for the KV-cache size (default: the model's)"},
                {"--json", "", false, "print JSON"}},
               a))
        return kUsage;
    Loaded L;
    if (int rc = load(cmd, a, L)) return rc;
    const Model& m = *L.model;
    const int64_t ctx = m.config.context_length;
    SpeedArgs sa;
    if (int rc = read_speed_args(cmd, a, {int(std::min<int64_t>(128, ctx)), int(std::min<int64_t>(64, ctx)), 3}, sa)) return rc;
    auto n_ctx = a.get_int("--ctx-size", ctx, 1, 1 << 24);
    if (!n_ctx) return fail(cmd, n_ctx.message(), kUsage);
    SessionOptions so;
    so.routing = L.routing;
    so.threads = L.threads;
    auto s = Session::create(m, so);
    if (!s) return fail(cmd, s.message());

    SpeedStats pp, tg;
    if (sa.pp > 0) {
        auto r = bench_prefill(*s, sa.pp, sa.reps, 1, progress);
        if (!r) return fail(cmd, r.message());
        pp = *r;
    }
    if (sa.tg > 0) {
        auto r = bench_decode(*s, sa.tg, sa.reps, 2, progress);
        if (!r) return fail(cmd, r.message());
        tg = *r;
    }
    // Where the time goes: one more decode pass with the session's timers on.
    SessionTimings t;
    s->set_timings(&t);
    const int timed_n = int(std::min<int64_t>(std::max(sa.tg, 64), s->max_positions()));
    auto timed = bench_decode(*s, timed_n, 1, 3, progress);
    s->set_timings(nullptr);
    if (!timed) return fail(cmd, timed.message());
    const double per_tok_ms = t.evals > 0 ? 1e3 / double(t.evals) : 0.0;

    const auto path = layer_paths(*s, L.routing);
    const uint64_t kv = kv_cache_bytes(m, path, *n_ctx), ssm = ssm_state_bytes(m, path);
    const int64_t n_past = std::max(sa.tg, 1) / 2;  // the decode test's mean context
    const double gflops = flops_per_token(m, path, n_past) * 1e-9;
    const uint64_t rss = peak_rss_bytes();
    double layers_total = 0.0, mixers = t.attention_s + t.mamba1_s + t.mamba2_s + t.ffn_s;
    for (double x : t.layer_s) layers_total += x;
    const double norm_residual = std::max(0.0, layers_total - mixers);

    auto layer_desc = [&](size_t il) {
        const auto& p = path[il];
        std::string d = p.attention ? "attention" : "";
        if (p.ssm != MixerKind::Attention) d += std::string(d.empty() ? "" : "+") + std::string(mixer_name(p.ssm));
        if (p.ffn) d += "+ffn";
        return d;
    };
    struct Op {
        const char* name;
        double s;
    };
    const Op ops[] = {{"embed", t.embed_s},  {"attention", t.attention_s}, {"mamba1", t.mamba1_s}, {"mamba2", t.mamba2_s},
                      {"ffn", t.ffn_s},      {"norm_residual", norm_residual}, {"output", t.output_s}};

    if (a.has("--json")) {
        std::printf("{\n  \"model\": \"%s\",\n  \"model_type\": \"%s\",\n  \"architecture\": \"%s\",\n  \"n_params\": %lld,\n",
                    json_escape(m.source_path).c_str(), json_escape(model_label(m)).c_str(), json_escape(m.architecture).c_str(),
                    (long long)m.parameter_count());
        std::printf("  \"n_threads\": %d,\n  \"routing\": \"%s\",\n  \"n_ctx\": %lld,\n", L.threads,
                    L.routing == Routing::Hard ? "hard" : "soft", (long long)*n_ctx);
        std::printf("  \"weight_bytes\": %llu,\n  \"kv_cache_bytes\": %llu,\n  \"ssm_state_bytes\": %llu,\n  \"peak_rss_bytes\": %llu,\n",
                    (unsigned long long)m.weight_bytes(), (unsigned long long)kv, (unsigned long long)ssm, (unsigned long long)rss);
        std::printf("  \"gflops_per_token\": %.6g,\n", gflops);
        std::printf("  \"prefill\": %s,\n  \"decode\": %s,\n", speed_json(pp).c_str(), speed_json(tg).c_str());
        std::printf("  \"layers\": [");
        for (size_t il = 0; il < t.layer_s.size(); ++il)
            std::printf("%s\n    {\"index\": %zu, \"path\": \"%s\", \"ms_per_token\": %.6g}", il ? "," : "", il,
                        layer_desc(il).c_str(), t.layer_s[il] * per_tok_ms);
        std::printf("\n  ],\n  \"ops_ms_per_token\": {");
        for (size_t i = 0; i < std::size(ops); ++i)
            std::printf("%s\"%s\": %.6g", i ? ", " : "", ops[i].name, ops[i].s * per_tok_ms);
        std::printf("}\n}\n");
        return 0;
    }
    std::printf("model        %s (%s)\n", m.source_path.c_str(), model_label(m).c_str());
    std::printf("threads      %d, routing %s\n", L.threads, L.routing == Routing::Hard ? "hard" : "soft");
    if (sa.pp > 0) std::printf("prefill      pp%d: %.2f ± %.2f t/s\n", sa.pp, pp.mean, pp.stddev);
    if (sa.tg > 0) std::printf("decode       tg%d: %.2f ± %.2f t/s\n", sa.tg, tg.mean, tg.stddev);
    std::printf("weights      %s\n", human_bytes(m.weight_bytes()).c_str());
    std::printf("KV cache     %s at n_ctx %lld (F32)\n", human_bytes(kv).c_str(), (long long)*n_ctx);
    std::printf("SSM state    %s\n", human_bytes(ssm).c_str());
    std::printf("peak RSS     %s\n", human_bytes(rss).c_str());
    std::printf("work         %.4f GFLOPs/token (at context %lld)\n\n", gflops, (long long)(n_past + 1));
    std::printf("layer  path                        ms/token\n");
    for (size_t il = 0; il < t.layer_s.size(); ++il)
        std::printf("%5zu  %-26s  %8.4f\n", il, layer_desc(il).c_str(), t.layer_s[il] * per_tok_ms);
    std::printf("\nop kind        ms/token\n");
    for (const Op& o : ops) std::printf("%-13s  %8.4f\n", o.name, o.s * per_tok_ms);
    return 0;
}

}  // namespace ef::run
