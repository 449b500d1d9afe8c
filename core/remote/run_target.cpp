#include "core/remote/run_target.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "core/remote/local_process.h"
#include "core/remote/remote_util.h"

namespace ef::remote {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string tail(const std::string& s, size_t n = 2000) { return s.size() <= n ? s : "..." + s.substr(s.size() - n); }

// Runner args common to both targets.
std::vector<std::string> profile_argv(const std::string& model, const RunRequest& req) {
    std::vector<std::string> a = {"profile", "-m", model, "--json", "-t", std::to_string(req.threads)};
    a.insert(a.end(), req.profile_args.begin(), req.profile_args.end());
    return a;
}
std::vector<std::string> perplexity_argv(const std::string& model, const std::string& text, const RunRequest& req) {
    std::vector<std::string> a = {"perplexity", "-m", model, "-f", text, "-t", std::to_string(req.threads)};
    a.insert(a.end(), req.perplexity_args.begin(), req.perplexity_args.end());
    return a;
}

}  // namespace

Result<ProfileReport> parse_profile_json(const std::string& text, const std::string& origin) {
    // The runner prints one JSON object; anything before it (a wrapper's banner) is ignored.
    const auto start = text.find('{');
    const auto end = text.rfind('}');
    if (start == std::string::npos || end == std::string::npos || end < start)
        return make_error(origin + ": no JSON in the runner's output: " + tail(text, 400));
    json j = json::parse(text.substr(start, end - start + 1), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(origin + ": the runner's profile JSON does not parse");
    ProfileReport r;
    try {
        r.model = j.value("model", "");
        r.model_type = j.value("model_type", "");
        r.n_threads = j.value("n_threads", 1);
        r.weight_bytes = j.value("weight_bytes", uint64_t(0));
        r.kv_cache_bytes = j.value("kv_cache_bytes", uint64_t(0));
        r.peak_rss_bytes = j.value("peak_rss_bytes", uint64_t(0));
        r.gflops_per_token = j.value("gflops_per_token", 0.0);
        if (j.contains("prefill") && j["prefill"].is_object()) {
            r.prefill_tps = j["prefill"].value("avg_ts", 0.0);
            r.prefill_stddev = j["prefill"].value("stddev_ts", 0.0);
        }
        if (j.contains("decode") && j["decode"].is_object()) {
            r.decode_tps = j["decode"].value("avg_ts", 0.0);
            r.decode_stddev = j["decode"].value("stddev_ts", 0.0);
        }
        if (j.contains("layers") && j["layers"].is_array())
            for (const auto& l : j["layers"]) r.layers.push_back({l.value("index", 0), l.value("path", ""), l.value("ms_per_token", 0.0)});
        if (j.contains("ops_ms_per_token") && j["ops_ms_per_token"].is_object())
            for (const auto& [k, v] : j["ops_ms_per_token"].items())
                if (v.is_number()) r.ops_ms_per_token.emplace_back(k, v.get<double>());
    } catch (const json::exception& e) {
        return make_error(origin + ": unexpected field type in the profile JSON: " + e.what());
    }
    if (!j.contains("decode") || !j.contains("peak_rss_bytes")) return make_error(origin + ": the profile JSON lacks decode/peak_rss_bytes");
    r.json = j.dump();
    return r;
}

double parse_final_ppl(const std::string& text) {
    static const std::regex re("Final estimate: PPL = ([0-9.eE+-]+)");
    std::smatch m;
    if (!std::regex_search(text, m, re)) return std::nan("");
    return std::strtod(m[1].str().c_str(), nullptr);
}

std::string remote_runner_name(const std::string& arch) { return "edgefusion-run-" + arch; }
std::string remote_model_name(const std::string& local_path) { return std::filesystem::path(local_path).filename().string(); }

// ---------------------------------------------------------------------------------------------

LocalTarget::LocalTarget(std::string runner_path) : runner_(std::move(runner_path)) {}

std::string LocalTarget::arch() const {
#if defined(__aarch64__)
    return "aarch64";
#else
    return "x86_64";
#endif
}

Result<ProfileReport> LocalTarget::profile(const RunRequest& req, const TargetOutputFn& on_output, Progress& progress) {
    const auto t0 = Clock::now();
    std::string out, err;
    auto sink = [&](std::string_view c, bool is_err) {
        (is_err ? err : out).append(c);
        if (on_output) on_output(name(), c, is_err);
    };
    std::vector<std::string> argv = {runner_};
    for (auto& a : profile_argv(req.model_path, req)) argv.push_back(a);
    progress.report(0.1, "local: profile");
    auto rc = run_local(argv, sink, progress);
    if (!rc) return rc.error();
    if (*rc != 0) return make_error("local: edgefusion-run profile exited " + std::to_string(*rc) + ": " + tail(err));
    auto rep = parse_profile_json(out, "local");
    if (!rep) return rep.error();
    if (!req.perplexity_text.empty()) {
        argv = {runner_};
        for (auto& a : perplexity_argv(req.model_path, req.perplexity_text, req)) argv.push_back(a);
        out.clear();
        err.clear();
        progress.report(0.6, "local: perplexity");
        auto prc = run_local(argv, sink, progress);
        if (!prc) return prc.error();
        if (*prc != 0) return make_error("local: edgefusion-run perplexity exited " + std::to_string(*prc) + ": " + tail(err));
        rep->perplexity = parse_final_ppl(out);
    }
    rep->target = name();
    rep->arch = arch();
    rep->wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
    progress.report(1.0, "local: done");
    return rep;
}

// ---------------------------------------------------------------------------------------------

BoardTarget::BoardTarget(BoardProfile board, std::string runner_path, ConnectOptions opts)
    : board_(std::move(board)), runner_(std::move(runner_path)), opts_(std::move(opts)) {}

Status BoardTarget::ensure_connected() {
    if (session_) return {};
    auto s = SshSession::connect(board_, opts_);
    if (!s) return s.error();
    session_ = std::move(*s);
    return {};
}

Result<Deployment> BoardTarget::deploy(const std::string& model_path, Progress& progress) {
    EF_TRY_STATUS(ensure_connected());
    Deployment d;
    const std::string rname = remote_runner_name(board_.arch), mname = remote_model_name(model_path);
    auto r = session_->upload(runner_, board_.work_dir + "/bin", rname, 0755, progress);
    if (!r) return r.error();
    auto m = session_->upload(model_path, board_.work_dir + "/models", mname, 0644, progress);
    if (!m) return m.error();
    d.runner_path = r->remote_path;
    d.model_path = m->remote_path;
    d.runner_skipped = r->skipped;
    d.model_skipped = m->skipped;
    return d;
}

Result<int> BoardTarget::run_remote(const std::vector<std::string>& runner_args, std::string& out, const TargetOutputFn& on_output,
                                    Progress& progress) {
    std::vector<std::string> argv = split_words(board_.exec_wrapper);
    argv.push_back(board_.work_dir + "/bin/" + remote_runner_name(board_.arch));
    argv.insert(argv.end(), runner_args.begin(), runner_args.end());
    std::string err;
    auto rc = session_->exec(
        argv, "",
        [&](std::string_view c, bool is_err) {
            (is_err ? err : out).append(c);
            if (on_output) on_output(name(), c, is_err);
        },
        progress);
    if (!rc) return rc.error();
    if (*rc != 0)
        return make_error("board '" + board_.name + "': edgefusion-run " + runner_args.front() + " exited " + std::to_string(*rc) +
                          ": " + tail(err));
    return *rc;
}

Result<ProfileReport> BoardTarget::profile(const RunRequest& req, const TargetOutputFn& on_output, Progress& progress) {
    const auto t0 = Clock::now();
    auto d = deploy(req.model_path, progress);
    if (!d) return d.error();
    std::string out;
    progress.report(0.0, board_.name + ": profile");
    auto rc = run_remote(profile_argv(d->model_path, req), out, on_output, progress);
    if (!rc) return rc.error();
    auto rep = parse_profile_json(out, "board '" + board_.name + "'");
    if (!rep) return rep.error();
    if (!req.perplexity_text.empty()) {
        auto t = session_->upload(req.perplexity_text, board_.work_dir + "/data", remote_model_name(req.perplexity_text), 0644, progress);
        if (!t) return t.error();
        out.clear();
        progress.report(0.0, board_.name + ": perplexity");
        auto prc = run_remote(perplexity_argv(d->model_path, t->remote_path, req), out, on_output, progress);
        if (!prc) return prc.error();
        rep->perplexity = parse_final_ppl(out);
    }
    rep->target = board_.name;
    rep->arch = board_.arch;
    rep->wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
    progress.report(1.0, board_.name + ": done");
    return rep;
}

// ---------------------------------------------------------------------------------------------

std::vector<Result<ProfileReport>> run_profiles(const std::vector<RunTarget*>& targets, const RunRequest& req,
                                                const TargetOutputFn& on_output, Progress& progress) {
    const size_t n = targets.size();
    std::vector<Result<ProfileReport>> results(n, Result<ProfileReport>(make_error("not run")));
    std::vector<double> fractions(n, 0.0);
    std::mutex mu;  // guards fractions and the parent's callback
    std::vector<std::unique_ptr<Progress>> child;
    for (size_t i = 0; i < n; ++i)
        child.push_back(std::make_unique<Progress>([&, i](double f, const std::string& stage) {
            std::lock_guard lock(mu);
            fractions[i] = f;
            double sum = 0;
            for (double x : fractions) sum += x;
            progress.report(sum / double(n), stage);
        }));
    std::atomic<size_t> done{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
            results[i] = targets[i]->profile(req, on_output, *child[i]);
            ++done;
        });
    // Cancellation fans out from the parent to every target.
    while (done.load() < n) {
        if (progress.cancelled())
            for (auto& c : child) c->cancel();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (auto& t : threads) t.join();
    return results;
}

namespace {
std::string fmtd(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}
std::string mib(uint64_t b) { return fmtd("%.2f", double(b) / double(1 << 20)); }
}  // namespace

std::string format_report_table(const std::vector<std::string>& names, const std::vector<Result<ProfileReport>>& results) {
    std::string o = "| target | arch | prefill t/s | decode t/s | peak RSS MiB | weights MiB | slowest layer ms/tok | PPL | wall s |\n"
                    "| ------ | ---- | ----------: | ---------: | -----------: | ----------: | -------------------: | --: | -----: |\n";
    for (size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        if (!r) {
            o += "| " + names[i] + " | | failed: " + r.message() + " | | | | | | |\n";
            continue;
        }
        double slow = 0;
        int slow_i = -1;
        for (const auto& l : r->layers)
            if (l.ms_per_token > slow) {
                slow = l.ms_per_token;
                slow_i = l.index;
            }
        o += "| " + r->target + " | " + r->arch + " | " + fmtd("%.2f", r->prefill_tps) + " | " + fmtd("%.2f", r->decode_tps) + " | " +
             mib(r->peak_rss_bytes) + " | " + mib(r->weight_bytes) + " | " +
             (slow_i >= 0 ? fmtd("%.4f", slow) + " (#" + std::to_string(slow_i) + ")" : "-") + " | " +
             (std::isnan(r->perplexity) ? "-" : fmtd("%.4f", r->perplexity)) + " | " + fmtd("%.1f", r->wall_s) + " |\n";
    }
    return o;
}

std::string reports_to_json(const std::vector<std::string>& names, const std::vector<Result<ProfileReport>>& results) {
    json arr = json::array();
    for (size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        if (!r) {
            arr.push_back({{"target", names[i]}, {"error", r.message()}});
            continue;
        }
        json j = json::parse(r->json, nullptr, false);
        if (!j.is_object()) j = json::object();
        j["target"] = r->target;
        j["arch"] = r->arch;
        j["wall_s"] = r->wall_s;
        if (!std::isnan(r->perplexity)) j["perplexity"] = r->perplexity;
        arr.push_back(std::move(j));
    }
    return arr.dump(2) + "\n";
}

}  // namespace ef::remote
