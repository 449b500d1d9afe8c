#include "core/train/trainer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <unistd.h>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/synth.h"
#include "core/train/hybridize.h"
#include "core/train/optimizer.h"
#include "core/train/train_checkpoint.h"
#include "core/train/train_data.h"
#include "core/train/train_model.h"
#include "quant/dtype.h"
#include "quant/quantize_model.h"
#include "runtime/thread_pool.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef::train {
namespace {

namespace fs = std::filesystem;

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string count_str(int64_t n) {
    if (n >= 1000000000) return fmt("%.2f B", double(n) / 1e9);
    if (n >= 1000000) return fmt("%.2f M", double(n) / 1e6);
    if (n >= 1000) return fmt("%.1f K", double(n) / 1e3);
    return std::to_string(n);
}

Result<std::string> read_text(const std::string& path, const std::string& key) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return make_error("'" + key + "': cannot read " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string shape_line(const std::string& arch, const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    std::string s = arch + ": dim " + std::to_string(c.dim) + ", " + std::to_string(c.n_layers) + " layers, " +
                    std::to_string(c.attn.n_heads) + " heads (" + std::to_string(c.attn.n_kv_heads) + " kv, head size " +
                    std::to_string(c.attn.head_dim) + "), ffn " + std::to_string(c.ffn_hidden);
    if (!layers.empty() && layers[0].mixer == MixerKind::Routed) {
        const bool m1 = layers[0].ssm_branch == MixerKind::Mamba1;
        s += ", ssm " + std::string(m1 ? "mamba1" : "mamba2") + " (d_inner " + std::to_string(c.ssm.d_inner) + ", d_state " +
             std::to_string(c.ssm.d_state) +
             (m1 ? ", dt_rank " + std::to_string(c.ssm.dt_rank)
                 : ", heads " + std::to_string(c.ssm.n_heads) + ", groups " + std::to_string(c.ssm.n_groups)) +
             ", conv " + std::to_string(c.ssm.d_conv) + ")";
    }
    return s + ", vocab " + std::to_string(c.vocab_size) + ", context " + std::to_string(c.context_length);
}

// alpha such that sigmoid(alpha / tau) = g.
float alpha_for(float g, float tau) { return tau * std::log(g / (1 - g)); }

// Everything a run needs, built by prepare().
struct Run {
    TrainConfig cfg;
    std::string origin;  // "from scratch", "hybridized from P", "resumed from D"
    std::optional<TrainModel> model, teacher;
    ModelShape shape;    // from-scratch shape (dry run without a model)
    Vocab vocab;
    TokenData data;
    int64_t total_tokens = 0;
    std::optional<LoadedCheckpoint> resume;
    int64_t steps = 0;
};

bool any_shape_key(const ModelSection& m) {
    return m.dim || m.layers || m.heads || m.kv_heads || m.head_dim || m.ffn_hidden || m.vocab_size;
}

Status prepare_model(Run& r, const TrainOptions& o, Progress& progress) {
    const TrainConfig& c = r.cfg;
    const std::string base = !o.base_model.empty() ? o.base_model : c.model.base;
    const bool freeze = o.freeze_base || c.training.freeze_base;
    if (o.resume) {
        const std::string dir = latest_checkpoint(o.output_dir);
        if (dir.empty()) return make_error(o.output_dir + ": --resume found no checkpoint_<step> or checkpoint_final to resume from");
        auto ck = load_train_checkpoint(dir, progress);
        if (!ck) return ck.error();
        auto tm = TrainModel::from_model(ck->model);
        if (!tm) return make_error(dir + ": " + tm.message());
        r.model = std::move(*tm);
        r.vocab = ck->model.vocab;
        r.origin = "resumed from " + dir + " (step " + std::to_string(ck->state.step) + ")";
        r.resume = std::move(*ck);
    }
    std::optional<Model> base_model;
    if (!base.empty()) {
        if (any_shape_key(c.model))
            return make_error(c.path + ": the model shape comes from the base model " + base +
                              "; remove model.dim/layers/heads/kv_heads/head_dim/ffn_hidden/vocab_size");
        LoadOptions lo;
        lo.tokenizer_path = c.model.tokenizer;
        auto m = load_model(base, lo, progress);
        if (!m) return make_error("base model " + m.message());
        if (m->architecture != "llama" && m->architecture != "edgefusion")
            return make_error("base model " + base + ": architecture '" + m->architecture +
                              "' is not supported for training (llama is hybridized into edgefusion; edgefusion trains as it is)");
        if (m->vocab.empty()) return make_error("base model " + base + ": has no tokenizer (set model.tokenizer)");
        base_model = std::move(*m);
    } else {
        if (freeze) return make_error(c.path + ": --freeze-base / training.freeze_base needs a base model (model.base or --base-model)");
        if (c.distill.enabled) return make_error(c.path + ": distill.enabled needs a base model (model.base or --base-model) as the teacher");
        if (!c.model.tokenizer.empty()) return make_error(c.path + ": model.tokenizer applies to a base model only (from scratch trains a BPE)");
    }
    if (c.distill.enabled) {
        if (base_model->architecture != "llama")
            return make_error("base model " + base + ": distillation needs a dense llama teacher, not " + base_model->architecture);
        auto t = TrainModel::from_model(*base_model);
        if (!t) return make_error("base model " + base + ": " + t.message());
        r.teacher = std::move(*t);
    }
    if (r.model) return Status::success();  // resumed

    if (base_model) {
        Model m;
        if (base_model->architecture == "llama" && c.model.arch == "edgefusion") {
            if (c.model.ssm_version != 2 || c.model.dt_rank)
                return make_error(c.path + ": hybridizing adds Mamba-2 branches; 'model.ssm.version' 1 and 'dt_rank' do not apply");
            HybridizeOptions h;
            h.gate_init = c.router.init_gate;
            h.router_temperature = c.router.tau_start;
            h.d_inner = c.model.d_inner;
            h.ssm_heads = c.model.ssm_heads;
            h.n_groups = c.model.ssm_groups;
            h.d_state = c.model.d_state;
            h.d_conv = c.model.d_conv;
            h.seed = c.training.seed;
            auto hm = hybridize(*base_model, h);
            if (!hm) return make_error("base model " + base + ": " + hm.message());
            m = std::move(*hm);
            r.origin = "hybridized from " + base;
        } else if (base_model->architecture == c.model.arch) {
            m = std::move(*base_model);
            r.origin = "fine-tuned from " + base;
        } else {
            return make_error(c.path + ": model.arch is " + c.model.arch + " but the base model " + base + " is " +
                              base_model->architecture);
        }
        auto tm = TrainModel::from_model(m);
        if (!tm) return make_error("base model " + base + ": " + tm.message());
        r.model = std::move(*tm);
        r.vocab = m.vocab;
        return Status::success();
    }
    // From scratch: the shape from the config; the vocabulary is trained in prepare_data.
    auto shape = resolve_model_shape(c);
    if (!shape) return shape.error();
    r.shape = std::move(*shape);
    r.origin = "from scratch";
    return Status::success();
}

Status build_scratch_model(Run& r) {
    const TrainConfig& c = r.cfg;
    const ModelConfig& mc = r.shape.config;
    SynthOptions s;
    s.arch = r.shape.arch;
    s.dim = mc.dim;
    s.n_layers = mc.n_layers;
    s.vocab = mc.vocab_size;
    s.seed = c.training.seed;
    s.tied_embeddings = mc.tied_embeddings;
    s.n_heads = mc.attn.n_heads;
    s.n_kv_heads = mc.attn.n_kv_heads;
    s.head_dim = mc.attn.head_dim;
    s.rope_dim = mc.attn.rope_dim;
    s.ffn_hidden = mc.ffn_hidden;
    s.context_length = mc.context_length;
    if (s.arch == "edgefusion") {
        const bool m1 = r.shape.layers[0].ssm_branch == MixerKind::Mamba1;
        s.ssm_version = m1 ? 1 : 2;
        s.d_inner = mc.ssm.d_inner;
        s.d_state = mc.ssm.d_state;
        s.d_conv = mc.ssm.d_conv;
        if (m1) s.dt_rank = mc.ssm.dt_rank;
        else {
            s.ssm_heads = mc.ssm.n_heads;
            s.ssm_groups = mc.ssm.n_groups;
        }
        s.router_temperature = c.router.tau_start;
    }
    auto m = synth_model(s);
    if (!m) return make_error(c.path + ": " + m.message());
    ModelConfig want = mc;
    want.router_temperature = m->config.router_temperature;
    m->config.attn.rope_theta = mc.attn.rope_theta;
    m->config.norm_eps = mc.norm_eps;
    if (!(m->config == want)) return make_error(c.path + ": the model built differs from the configured shape (internal)");
    m->vocab = r.vocab;
    m->metadata["general.name"] = MetaValue::str("edgefusion trained from scratch");
    auto tm = TrainModel::from_model(*m);
    if (!tm) return make_error(c.path + ": " + tm.message());
    for (Param& p : tm->params())
        if (p.name.size() > 12 && p.name.ends_with(".router_gate"))
            for (float& a : p.value) a = alpha_for(c.router.init_gate, c.router.tau_start);
    r.model = std::move(*tm);
    return Status::success();
}

Status prepare_data(Run& r, Progress& progress, const std::function<void(const std::string&)>& say) {
    const TrainConfig& c = r.cfg;
    auto text = read_text(c.data.train_text, "data.train_text");
    if (!text) return make_error(c.path + ": " + text.message());
    if (text->empty()) return make_error(c.path + ": 'data.train_text' " + c.data.train_text + " is empty");
    if (r.vocab.empty()) {  // from scratch: our own BPE, padded to the configured size with unused tokens
        const int64_t V = r.shape.config.vocab_size;
        auto v = train_bpe(*text, BpeOptions{V, 0}, progress);
        if (!v) return make_error(c.data.train_text + ": " + v.message());
        if (int64_t(v->tokens.size()) < V)
            say("tokenizer: the text has merges for " + std::to_string(v->tokens.size()) + " tokens; " +
                std::to_string(V - int64_t(v->tokens.size())) + " unused tokens pad the vocabulary to " + std::to_string(V));
        while (int64_t(v->tokens.size()) < V) {
            v->tokens.push_back("<unused" + std::to_string(v->tokens.size()) + ">");
            v->scores.push_back(-1e9f);
            v->token_types.push_back(5);
        }
        r.vocab = std::move(*v);
    }
    auto tok = Tokenizer::create(r.vocab);
    if (!tok) return make_error("the model's tokenizer: " + tok.message());
    std::vector<int32_t> ids = tokenize_documents(*tok, *text);
    r.total_tokens = int64_t(ids.size());
    r.data = split_tokens(std::move(ids), c.data.val_fraction);
    const std::string what = "'data.train_text' " + c.data.train_text;
    if (int64_t(r.data.train.size()) < c.data.seq_len + 1)
        return make_error(what + " is shorter than one batch: " + std::to_string(r.data.train.size()) +
                          " training tokens, a window of seq_len " + std::to_string(c.data.seq_len) + " needs " +
                          std::to_string(c.data.seq_len + 1));
    if (c.training.eval_every > 0 && int64_t(r.data.val.size()) < c.data.seq_len + 1)
        return make_error(what + ": the validation split (" + std::to_string(r.data.val.size()) + " tokens) is shorter than one window of " +
                          std::to_string(c.data.seq_len + 1) + "; raise data.val_fraction or set training.eval_every 0");
    return Status::success();
}

std::vector<ParamView> views(TrainModel& m, std::vector<std::string>* names) {
    std::vector<ParamView> v;
    for (Param& p : m.params()) {
        if (!p.trainable) continue;
        v.push_back({p.value, p.grad, p.shape.size() >= 2});
        if (names) names->push_back(p.name);
    }
    return v;
}

// Teacher logits (B*T, V) for the inputs of (B, T + 1) windows.
Result<std::vector<float>> teacher_logits(TrainModel& teacher, const std::vector<int32_t>& batch, int64_t B, int64_t T,
                                          rt::ThreadPool* pool) {
    std::vector<float> out;
    for (int64_t b = 0; b < B; ++b) {
        auto l = teacher.forward_logits(std::span<const int32_t>(batch).subspan(size_t(b * (T + 1)), size_t(T)), pool);
        if (!l) return l.error();
        out.insert(out.end(), l->begin(), l->end());
    }
    return out;
}

}  // namespace

double ssm_fraction(const std::vector<float>& gates) {
    if (gates.empty()) return 0;
    int n = 0;
    for (float g : gates) n += g < 0.5f;
    return double(n) / double(gates.size());
}

double mean_gate_entropy_bits(const std::vector<float>& gates) {
    if (gates.empty()) return 0;
    double sum = 0;
    for (float gf : gates) {
        const double g = std::clamp(double(gf), 0.0, 1.0);
        if (g > 0) sum -= g * std::log2(g);
        if (g < 1) sum -= (1 - g) * std::log2(1 - g);
    }
    return sum / double(gates.size());
}

std::string TrainLogEntry::to_json() const {
    nlohmann::json j;
    j["step"] = step;
    j["total_steps"] = total_steps;
    j["loss"] = loss;
    j["task_loss"] = task_loss;
    j["router_loss"] = router_loss;
    if (val_loss >= 0) j["val_loss"] = val_loss;
    j["grad_norm"] = grad_norm;
    j["lr"] = lr;
    j["tau"] = tau;
    j["ssm_frac"] = ssm_frac;
    j["gate_entropy_bits"] = gate_entropy_bits;
    j["gates"] = gates;
    j["tokens_per_s"] = tokens_per_s;
    return j.dump();
}

Result<TrainSummary> run_training(const TrainConfig& config, const TrainOptions& o, Progress& progress) {
    register_hdf5_format();
    auto say = [&](const std::string& s) {
        if (o.on_message) o.on_message(s);
    };
    Run r;
    r.cfg = config;
    TrainConfig& c = r.cfg;
    EF_TRY_STATUS(check_training_values(c));
    if (o.output_dir.empty() && !o.dry_run) return make_error("no output folder given");
    if (o.debug) {
        c.training.steps = 100;
        c.training.warmup = std::min<int64_t>(c.training.warmup, 10);
    }
    const int threads = o.threads > 0 ? o.threads : c.training.threads;
    EF_TRY_STATUS(prepare_model(r, o, progress));
    EF_TRY_STATUS(prepare_data(r, progress, say));
    const int64_t B = c.data.batch, T = c.data.seq_len, accum = c.data.grad_accum;
    r.steps = c.training.steps;

    TrainSummary sum;
    sum.data_tokens = r.total_tokens;
    sum.train_tokens = int64_t(r.data.train.size());
    sum.val_tokens = int64_t(r.data.val.size());
    const bool freeze = o.freeze_base || c.training.freeze_base;
    ModelConfig mc;
    std::vector<LayerDesc> layers;
    std::string arch;
    if (r.model) {
        if (freeze) r.model->freeze_base();
        mc = r.model->config();
        arch = r.model->architecture();
        sum.memory.params = r.model->parameter_count();
        sum.memory.trainable = r.model->trainable_count();
        sum.memory.activation_bytes = r.model->activation_bytes(B, T);
        auto tm = r.model->to_model();
        if (tm) layers = tm->layers;
    } else {
        mc = r.shape.config;
        layers = r.shape.layers;
        arch = r.shape.arch;
        sum.memory.params = sum.memory.trainable = r.shape.parameter_count;
        sum.memory.activation_bytes = estimate_activation_bytes(mc, layers, B, T);
    }
    if (mc.context_length > 0 && T > mc.context_length)
        return make_error(c.path + ": 'data.seq_len' (" + std::to_string(T) + ") exceeds the model's context (" +
                          std::to_string(mc.context_length) + ")");
    if (r.teacher) sum.memory.activation_bytes += uint64_t(B * T * mc.vocab_size) * 4;  // teacher logits
    sum.memory.param_bytes = uint64_t(sum.memory.params) * 4;
    sum.memory.grad_bytes = uint64_t(sum.memory.trainable) * 4;
    sum.memory.adam_bytes = uint64_t(sum.memory.trainable) * 8;
    if (r.teacher) sum.memory.param_bytes += uint64_t(r.teacher->parameter_count()) * 4;
    {
        std::ostringstream p;
        p << "config: " << c.path << "\n";
        p << "model: " << r.origin << "; " << shape_line(arch, mc, layers) << "\n";
        p << "parameters: " << count_str(sum.memory.params) << " (trainable " << count_str(sum.memory.trainable)
          << (freeze ? ", base frozen" : "") << ")\n";
        p << "data: " << c.data.train_text << ": " << r.total_tokens << " tokens (train " << sum.train_tokens << ", validation "
          << sum.val_tokens << "); tokenizer " << (r.origin == "from scratch" ? "BPE trained on the text, " : "of the model, ")
          << r.vocab.tokens.size() << " tokens\n";
        p << "batch: " << B << " x " << T << " tokens x " << accum << " accumulation = " << B * T * accum << " tokens per step\n";
        p << "training: " << r.steps << " steps, lr " << c.training.lr << " -> " << c.training.min_lr << " (cosine, warmup "
          << c.training.warmup << "), weight decay " << c.training.weight_decay << ", clip " << c.training.clip << ", "
          << threads << " thread(s)" << (r.teacher ? ", distillation (KL to the base model)" : ", LM loss") << "\n";
        p << "router: lambda " << c.router.lambda;
        if (c.router.entropy > 0) p << ", entropy " << c.router.entropy;
        p << ", tau " << c.router.tau_start << " -> " << c.router.tau_end << "\n";
        const MemoryEstimate& m = sum.memory;
        p << "memory estimate: params " << format_bytes(m.param_bytes) << " + grads " << format_bytes(m.grad_bytes)
          << " + AdamW moments " << format_bytes(m.adam_bytes) << " + activations " << format_bytes(m.activation_bytes)
          << " = " << format_bytes(m.total()) << "\n";
        sum.plan = p.str();
    }
    say(sum.plan);
    if (o.dry_run) return sum;

    // A config can describe a model far beyond this machine (the 7B one): refuse before allocating.
    const uint64_t ram = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
    if (ram > 0 && sum.memory.total() > ram)
        return make_error(c.path + ": training needs about " + format_bytes(sum.memory.total()) + " (see --dry-run), this machine has " +
                          format_bytes(ram));
    if (!r.model) EF_TRY_STATUS(build_scratch_model(r));
    TrainModel& model = *r.model;
    std::error_code ec;
    fs::create_directories(o.output_dir, ec);
    if (ec) return make_error(o.output_dir + ": cannot create the output folder: " + ec.message());

    std::vector<std::string> names;
    std::vector<ParamView> pv = views(model, &names);
    AdamW adam(AdamWOptions{c.training.beta1, c.training.beta2, 1e-8f, c.training.weight_decay});
    auto sampler = BatchSampler::create(r.data.train, B, T, c.training.seed, "'data.train_text' " + c.data.train_text);
    if (!sampler) return sampler.error();
    int64_t step = 0;
    if (r.resume) {
        const TrainState& st = r.resume->state;
        if (st.names != names)
            return make_error("the checkpoint's optimizer state covers other parameters than this run trains "
                              "(was it made with another --freeze-base setting?)");
        adam.restore(st.adam_t, st.m, st.v);
        EF_TRY_STATUS(sampler->restore(st.rng_state, st.batches_drawn));
        step = st.step;
        if (step >= r.steps) return make_error("the checkpoint is at step " + std::to_string(step) + ", the config trains " +
                                               std::to_string(r.steps) + " steps: nothing to resume");
    }
    const CosineSchedule sched{c.training.lr, c.training.min_lr, c.training.warmup, r.steps};
    rt::ThreadPool pool(threads);
    const std::vector<int32_t> val = c.training.eval_every > 0 ? fixed_windows(r.data.val, B, T, c.training.eval_batches)
                                                               : std::vector<int32_t>{};
    std::ofstream jsonl(fs::path(o.output_dir) / "train_log.jsonl", r.resume ? std::ios::app : std::ios::trunc);

    auto state_now = [&](int64_t at) {
        TrainState st;
        st.step = at;
        st.adam_t = adam.steps_done();
        st.batches_drawn = sampler->batches_drawn();
        st.rng_state = sampler->state();
        st.config_text = c.text;
        st.names = names;
        st.m = adam.m();
        st.v = adam.v();
        return st;
    };
    auto save = [&](const std::string& name, int64_t at) -> Status {
        auto m = model.to_model();
        if (!m) return m.error();
        EF_TRY_STATUS(save_train_checkpoint(o.output_dir, name, *m, state_now(at)));
        say("saved " + (fs::path(o.output_dir) / name).string());
        return Status::success();
    };

    std::vector<int32_t> batch;
    const int64_t first = step;
    for (; step < r.steps; ++step) {
        if (progress.cancelled()) {
            EF_TRY_STATUS(save("checkpoint_" + std::to_string(step), step));
            return make_error("cancelled after step " + std::to_string(step) + "; continue with --resume");
        }
        const auto t0 = std::chrono::steady_clock::now();
        const float tau = c.router.tau(step, r.steps);
        model.set_router_temperature(tau);
        model.zero_grad();
        StepResult acc;
        for (int64_t micro = 0; micro < accum; ++micro) {
            sampler->next(batch);
            std::vector<float> tl;
            if (r.teacher) {
                auto t = teacher_logits(*r.teacher, batch, B, T, &pool);
                if (!t) return t.error();
                tl = std::move(*t);
            }
            auto res = model.forward_backward(batch, B, T, LossSpec{c.router.lambda, c.router.entropy, tl}, &pool);
            if (!res) return make_error("step " + std::to_string(step + 1) + ": " + res.message());
            acc.loss += res->loss / double(accum);
            acc.task_loss += res->task_loss / double(accum);
            acc.router_loss += res->router_loss / double(accum);
        }
        if (!std::isfinite(acc.loss))
            return make_error("step " + std::to_string(step + 1) + ": the loss is not finite (lower training.lr?)");
        // Gradients are sums over the micro-batches: their mean is grad / accum.
        const double norm = global_grad_norm(pv) / double(accum);
        const float scale = clip_scale(norm, c.training.clip) / float(accum);
        const float lr = sched.lr(step);
        EF_TRY_STATUS(adam.step(pv, lr, scale));
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

        const int64_t done = step + 1;
        const bool last = done == r.steps;
        if (done % c.training.log_every == 0 || last || step == first) {
            TrainLogEntry e;
            e.step = done;
            e.total_steps = r.steps;
            e.loss = acc.loss;
            e.task_loss = acc.task_loss;
            e.router_loss = acc.router_loss;
            e.grad_norm = norm;
            e.lr = lr;
            e.tau = tau;
            e.gates = model.gates();
            e.ssm_frac = ssm_fraction(e.gates);
            e.gate_entropy_bits = mean_gate_entropy_bits(e.gates);
            e.tokens_per_s = secs > 0 ? double(B * T * accum) / secs : 0;
            if (!val.empty() && (done % c.training.eval_every == 0 || last)) {
                double vl = 0;
                const int64_t nb = int64_t(val.size()) / (B * (T + 1));
                for (int64_t i = 0; i < nb; ++i) {
                    const std::vector<int32_t> vb(val.begin() + i * B * (T + 1), val.begin() + (i + 1) * B * (T + 1));
                    std::vector<float> tl;
                    if (r.teacher) {
                        auto t = teacher_logits(*r.teacher, vb, B, T, &pool);
                        if (!t) return t.error();
                        tl = std::move(*t);
                    }
                    auto res = model.forward_loss(vb, B, T, LossSpec{0.0f, 0.0f, tl}, &pool);
                    if (!res) return make_error("validation: " + res.message());
                    vl += res->task_loss / double(nb);
                }
                e.val_loss = vl;
            }
            jsonl << e.to_json() << "\n";
            jsonl.flush();
            if (o.on_log) o.on_log(e);
            sum.log.push_back(std::move(e));
        }
        progress.report(double(done - first) / double(r.steps - first), "step " + std::to_string(done) + "/" + std::to_string(r.steps));
        if (c.training.checkpoint_every > 0 && done % c.training.checkpoint_every == 0 && !last)
            EF_TRY_STATUS(save("checkpoint_" + std::to_string(done), done));
    }
    sum.steps_done = step;
    EF_TRY_STATUS(save("checkpoint_final", step));
    sum.final_checkpoint = (fs::path(o.output_dir) / "checkpoint_final").string();

    if (!o.skip_quantization && c.quant.format != "none") {
        auto m = model.to_model();
        if (!m) return m.error();
        ModelQuantOptions q;
        q.ef_format = c.quant.format == "ef";
        if (q.ef_format) {
            q.ef.bits = c.quant.bits;
            q.ef.block = c.quant.block;
        } else {
            q.ggml_type = *dtype_from_name(c.quant.format);
        }
        q.threads = threads;
        auto qm = quantize_model(*m, q, nullptr, nullptr, progress);
        if (!qm) return make_error("quantizing the final checkpoint: " + qm.message());
        const fs::path qdir = fs::path(o.output_dir) / "checkpoint_quantized";
        fs::create_directories(qdir, ec);
        const fs::path out = qdir / (q.ef_format ? "model.h5" : "model.gguf");
        EF_TRY_STATUS(save_model(*qm, out.string(), SaveOptions{}, progress));
        sum.quantized_model = out.string();
        say("quantized (" + c.quant.format + "): " + out.string());
    }
    return sum;
}

}  // namespace ef::train
