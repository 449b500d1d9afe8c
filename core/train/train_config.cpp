#include "core/train/train_config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numbers>
#include <sstream>

#include "core/arch/architecture.h"
#include "quant/dtype.h"

namespace ef::train {
namespace {

namespace fs = std::filesystem;

// "FILE:LINE: " for a node (yaml-cpp lines are 0-based).
std::string where(const std::string& path, const YAML::Node& n) {
    return path + ":" + std::to_string(n.Mark().line + 1) + ": ";
}

// One section's keys: each handler converts the node into a field or returns an error message.
using Handler = std::function<std::string(const YAML::Node&)>;

template <class T>
std::string convert(const YAML::Node& n, T& out, const char* what) {
    if (!n.IsScalar()) return std::string("expected ") + what;
    try {
        out = n.as<T>();
    } catch (const YAML::Exception&) {
        return std::string("expected ") + what + ", got '" + n.Scalar() + "'";
    }
    return {};
}

Handler int_key(int64_t& f) { return [&f](const YAML::Node& n) { return convert(n, f, "an integer"); }; }
Handler int_key(int& f) { return [&f](const YAML::Node& n) { return convert(n, f, "an integer"); }; }
Handler u64_key(uint64_t& f) { return [&f](const YAML::Node& n) { return convert(n, f, "a non-negative integer"); }; }
Handler float_key(float& f) { return [&f](const YAML::Node& n) { return convert(n, f, "a number"); }; }
Handler double_key(double& f) { return [&f](const YAML::Node& n) { return convert(n, f, "a number"); }; }
Handler bool_key(bool& f) { return [&f](const YAML::Node& n) { return convert(n, f, "true or false"); }; }
Handler str_key(std::string& f) { return [&f](const YAML::Node& n) { return convert(n, f, "a string"); }; }

std::string read_section(const std::string& path, const std::string& section, const YAML::Node& node,
                         const std::map<std::string, Handler>& keys) {
    if (!node.IsMap()) return where(path, node) + "'" + section + "' must be a mapping of keys";
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string key = it->first.Scalar();
        auto h = keys.find(key);
        if (h == keys.end()) {
            std::string known;
            for (const auto& [k, _] : keys) known += (known.empty() ? "" : ", ") + k;
            return where(path, it->first) + "unknown key '" + section + "." + key + "' (known: " + known + ")";
        }
        if (std::string err = h->second(it->second); !err.empty())
            return where(path, it->second) + "'" + section + "." + key + "': " + err;
    }
    return {};
}

std::string parse_root(const std::string& path, const YAML::Node& root, TrainConfig& c) {
    if (!root.IsMap()) return path + ": the config must be a mapping with sections model, data, training, ...";
    ModelSection& m = c.model;
    DataSection& d = c.data;
    TrainingSection& t = c.training;
    RouterSection& r = c.router;
    std::string anneal = "none";
    const std::map<std::string, Handler> ssm_keys = {
        {"version", int_key(m.ssm_version)}, {"d_inner", int_key(m.d_inner)}, {"d_state", int_key(m.d_state)},
        {"heads", int_key(m.ssm_heads)},     {"head_dim", int_key(m.ssm_head_dim)}, {"groups", int_key(m.ssm_groups)},
        {"conv", int_key(m.d_conv)},         {"dt_rank", int_key(m.dt_rank)},
    };
    const std::map<std::string, std::map<std::string, Handler>> sections = {
        {"model",
         {{"arch", str_key(m.arch)}, {"dim", int_key(m.dim)}, {"layers", int_key(m.layers)}, {"heads", int_key(m.heads)},
          {"kv_heads", int_key(m.kv_heads)}, {"head_dim", int_key(m.head_dim)}, {"ffn_hidden", int_key(m.ffn_hidden)},
          {"context", int_key(m.context)}, {"vocab_size", int_key(m.vocab_size)}, {"tokenizer", str_key(m.tokenizer)},
          {"base", str_key(m.base)}, {"rope_theta", float_key(m.rope_theta)}, {"norm_eps", float_key(m.norm_eps)},
          {"tied_embeddings", bool_key(m.tied_embeddings)},
          {"ssm", [&](const YAML::Node& n) {
               const std::string e = read_section(path, "model.ssm", n, ssm_keys);
               return e.empty() ? e : "\n" + e;  // the inner message has its own location
           }}}},
        {"data",
         {{"train_text", str_key(d.train_text)}, {"val_fraction", double_key(d.val_fraction)},
          {"seq_len", int_key(d.seq_len)}, {"batch", int_key(d.batch)}, {"grad_accum", int_key(d.grad_accum)}}},
        {"training",
         {{"steps", int_key(t.steps)}, {"lr", float_key(t.lr)}, {"min_lr", float_key(t.min_lr)},
          {"warmup", int_key(t.warmup)}, {"weight_decay", float_key(t.weight_decay)}, {"clip", float_key(t.clip)},
          {"beta1", float_key(t.beta1)}, {"beta2", float_key(t.beta2)}, {"seed", u64_key(t.seed)},
          {"threads", int_key(t.threads)}, {"log_every", int_key(t.log_every)},
          {"checkpoint_every", int_key(t.checkpoint_every)}, {"eval_every", int_key(t.eval_every)},
          {"eval_batches", int_key(t.eval_batches)}, {"freeze_base", bool_key(t.freeze_base)}}},
        {"router",
         {{"lambda", float_key(r.lambda)}, {"entropy", float_key(r.entropy)}, {"tau_start", float_key(r.tau_start)}, {"tau_end", float_key(r.tau_end)},
          {"anneal", str_key(anneal)}, {"init_gate", float_key(r.init_gate)}}},
        {"distill", {{"enabled", bool_key(c.distill.enabled)}}},
        {"quantization",
         {{"format", str_key(c.quant.format)}, {"bits", int_key(c.quant.bits)}, {"block", int_key(c.quant.block)}}},
    };
    for (auto it = root.begin(); it != root.end(); ++it) {
        const std::string name = it->first.Scalar();
        auto s = sections.find(name);
        if (s == sections.end())
            return where(path, it->first) + "unknown section '" + name +
                   "' (known: data, distill, model, quantization, router, training)";
        if (std::string e = read_section(path, name, it->second, s->second); !e.empty()) {
            // A nested section's error already starts with its location: keep only that line.
            const size_t nl = e.find('\n');
            return nl == std::string::npos ? e : e.substr(nl + 1);
        }
    }
    if (anneal == "none") r.anneal = Anneal::None;
    else if (anneal == "linear") r.anneal = Anneal::Linear;
    else if (anneal == "cosine") r.anneal = Anneal::Cosine;
    else return path + ": 'router.anneal' is '" + anneal + "' (none, linear, cosine)";
    if (d.train_text.empty()) return path + ": 'data.train_text' is required";
    const fs::path base_dir = fs::path(path).parent_path();
    auto resolve = [&](std::string& p) {
        if (!p.empty() && fs::path(p).is_relative() && !base_dir.empty()) p = (base_dir / p).lexically_normal().string();
    };
    resolve(d.train_text);
    resolve(m.tokenizer);
    resolve(m.base);
    return {};
}

std::string key_error(const TrainConfig& c, const std::string& msg) { return c.path + ": " + msg; }

}  // namespace

float RouterSection::tau(int64_t step, int64_t total) const {
    if (anneal == Anneal::None || total <= 1) return tau_start;
    const double p = std::clamp(double(step) / double(total - 1), 0.0, 1.0);
    if (anneal == Anneal::Linear) return float(tau_start + (tau_end - tau_start) * p);
    const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * p));  // 1 -> 0
    return float(tau_end + (tau_start - tau_end) * coeff);
}

Result<TrainConfig> parse_train_config(const std::string& yaml_text, const std::string& path) {
    TrainConfig c;
    c.path = path;
    c.text = yaml_text;
    try {
        const YAML::Node root = YAML::Load(yaml_text);
        if (std::string e = parse_root(path, root, c); !e.empty()) return make_error(e);
    } catch (const YAML::Exception& e) {
        return make_error(path + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
    }
    return c;
}

Result<TrainConfig> load_train_config(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return make_error(path + ": cannot open the config file");
    std::ostringstream ss;
    ss << f.rdbuf();
    if (ss.str().size() > (size_t(1) << 20)) return make_error(path + ": a config file over 1 MiB is not a config");
    return parse_train_config(ss.str(), path);
}

Result<ModelShape> resolve_model_shape(const TrainConfig& tc) {
    const ModelSection& m = tc.model;
    auto err = [&](const std::string& msg) -> Result<ModelShape> { return make_error(key_error(tc, msg)); };
    const ArchitectureInfo* arch = find_architecture(m.arch);
    if (!arch || (m.arch != "edgefusion" && m.arch != "llama"))
        return err("'model.arch' is '" + m.arch + "'; training supports edgefusion and llama");
    if (m.dim <= 0) return err("'model.dim' must be positive (got " + std::to_string(m.dim) + ")");
    if (m.layers <= 0) return err("'model.layers' must be positive (got " + std::to_string(m.layers) + ")");
    if (m.heads <= 0) return err("'model.heads' must be positive (got " + std::to_string(m.heads) + ")");
    if (m.head_dim == 0 && m.dim % m.heads != 0)
        return err("'model.dim' (" + std::to_string(m.dim) + ") is not divisible by 'model.heads' (" + std::to_string(m.heads) + ")");
    const int64_t kvh = m.kv_heads ? m.kv_heads : m.heads;
    if (kvh <= 0 || m.heads % kvh != 0)
        return err("'model.kv_heads' (" + std::to_string(kvh) + ") must divide 'model.heads' (" + std::to_string(m.heads) + ")");
    const int64_t hd = m.head_dim ? m.head_dim : m.dim / m.heads;
    if (hd <= 0 || hd % 2 != 0) return err("the attention head size (" + std::to_string(hd) + ") must be even for RoPE");
    if (m.ffn_hidden < 0) return err("'model.ffn_hidden' must be positive");
    if (m.vocab_size != 0 && m.vocab_size < 260)
        return err("'model.vocab_size' (" + std::to_string(m.vocab_size) + ") must be at least 260 (3 special and 256 byte tokens, and a piece)");
    if (m.context < 0) return err("'model.context' must be positive");
    if (m.context > 0 && m.context < tc.data.seq_len)
        return err("'data.seq_len' (" + std::to_string(tc.data.seq_len) + ") exceeds 'model.context' (" + std::to_string(m.context) + ")");

    ModelConfig c;
    c.vocab_size = m.vocab_size ? m.vocab_size : 512;
    c.dim = m.dim;
    c.n_layers = m.layers;
    c.context_length = m.context ? m.context : std::max<int64_t>(tc.data.seq_len, 256);
    c.ffn_hidden = m.ffn_hidden;
    c.norm_eps = m.norm_eps;
    c.tied_embeddings = m.tied_embeddings;
    c.attn.n_heads = m.heads;
    c.attn.n_kv_heads = kvh;
    c.attn.head_dim = hd;
    c.attn.rope_dim = hd;
    c.attn.rope_theta = m.rope_theta;
    if (m.arch == "edgefusion") {
        if (m.ssm_version != 1 && m.ssm_version != 2)
            return err("'model.ssm.version' must be 1 or 2 (got " + std::to_string(m.ssm_version) + ")");
        if (m.d_inner < 0 || m.d_state < 0 || m.d_conv < 1)
            return err("'model.ssm' sizes must be positive (d_inner, d_state, conv)");
        c.ssm.d_inner = m.d_inner ? m.d_inner : 2 * m.dim;
        c.ssm.d_state = m.d_state ? m.d_state : 16;
        c.ssm.d_conv = m.d_conv;
        if (m.ssm_version == 1) {
            if (m.ssm_heads || m.ssm_groups || m.ssm_head_dim)
                return err("'model.ssm.heads', 'groups' and 'head_dim' are Mamba-2 settings (ssm.version is 1)");
            c.ssm.dt_rank = m.dt_rank ? m.dt_rank : (m.dim + 15) / 16;
        } else {
            if (m.dt_rank) return err("'model.ssm.dt_rank' is a Mamba-1 setting (ssm.version is 2)");
            int64_t sh = m.ssm_heads;
            if (sh == 0) sh = m.ssm_head_dim ? c.ssm.d_inner / m.ssm_head_dim : std::max<int64_t>(1, c.ssm.d_inner / 64);
            if (sh <= 0 || c.ssm.d_inner % sh != 0)
                return err("'model.ssm.d_inner' (" + std::to_string(c.ssm.d_inner) + ") is not divisible by 'model.ssm.heads' (" +
                           std::to_string(sh) + ")");
            if (m.ssm_head_dim && sh * m.ssm_head_dim != c.ssm.d_inner)
                return err("'model.ssm.heads' x 'model.ssm.head_dim' (" + std::to_string(sh) + " x " + std::to_string(m.ssm_head_dim) +
                           ") must equal 'model.ssm.d_inner' (" + std::to_string(c.ssm.d_inner) + ")");
            const int64_t g = m.ssm_groups ? m.ssm_groups : 1;
            if (g <= 0 || sh % g != 0)
                return err("'model.ssm.groups' (" + std::to_string(g) + ") must divide 'model.ssm.heads' (" + std::to_string(sh) + ")");
            c.ssm.n_heads = sh;
            c.ssm.n_groups = g;
        }
    } else if (m.d_inner || m.d_state || m.ssm_heads || m.ssm_groups || m.ssm_head_dim || m.dt_rank) {
        return err("'model.ssm' applies to arch edgefusion only (arch is " + m.arch + ")");
    }
    arch->complete_config(c);
    ModelShape s;
    s.arch = m.arch;
    s.layers = arch->default_layers(c);
    if (m.arch == "edgefusion" && m.ssm_version == 1)
        for (LayerDesc& l : s.layers) l.ssm_branch = MixerKind::Mamba1;
    if (Status st = validate_config(*arch, c, s.layers); !st) return err("impossible model shape: " + st.message());
    s.config = c;
    for (const TensorSpec& t : arch->tensor_specs(c, s.layers)) {
        if (t.optional && t.name.rfind("output.", 0) == 0 && c.tied_embeddings) continue;
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        s.parameter_count += n;
    }
    return s;
}

Status check_training_values(const TrainConfig& c) {
    auto err = [&](const std::string& msg) -> Status { return make_error(key_error(c, msg)); };
    const DataSection& d = c.data;
    const TrainingSection& t = c.training;
    const RouterSection& r = c.router;
    if (d.seq_len < 2) return err("'data.seq_len' must be at least 2");
    if (d.batch < 1) return err("'data.batch' must be at least 1");
    if (d.grad_accum < 1) return err("'data.grad_accum' must be at least 1");
    if (!(d.val_fraction >= 0 && d.val_fraction <= 0.5)) return err("'data.val_fraction' must be within 0..0.5");
    if (t.steps < 1) return err("'training.steps' must be at least 1");
    if (!(t.lr > 0)) return err("'training.lr' must be positive");
    if (!(t.min_lr >= 0 && t.min_lr <= t.lr)) return err("'training.min_lr' must be within 0..lr");
    if (t.warmup < 0 || t.warmup > t.steps) return err("'training.warmup' must be within 0..steps");
    if (!(t.weight_decay >= 0)) return err("'training.weight_decay' must not be negative");
    if (!(t.clip >= 0)) return err("'training.clip' must not be negative (0: no clipping)");
    if (!(t.beta1 >= 0 && t.beta1 < 1) || !(t.beta2 >= 0 && t.beta2 < 1)) return err("'training.beta1' and 'beta2' must be within [0, 1)");
    if (t.threads < 1 || t.threads > 256) return err("'training.threads' must be within 1..256");
    if (t.log_every < 1) return err("'training.log_every' must be at least 1");
    if (t.checkpoint_every < 0 || t.eval_every < 0 || t.eval_batches < 1)
        return err("'training.checkpoint_every' and 'eval_every' must not be negative, 'eval_batches' at least 1");
    if (!(r.lambda >= 0)) return err("'router.lambda' must not be negative");
    if (!(r.entropy >= 0) || !std::isfinite(r.entropy)) return err("'router.entropy' must be a finite number >= 0");
    if (!(r.tau_start > 0) || !(r.tau_end > 0)) return err("'router.tau_start' and 'tau_end' must be positive");
    if (!(r.init_gate > 0 && r.init_gate < 1)) return err("'router.init_gate' must be within (0, 1)");
    const std::string& f = c.quant.format;
    if (f == "ef") {
        if (c.quant.bits < 2 || c.quant.bits > 8 || c.quant.bits == 7)
            return err("'quantization.bits' must be one of 2, 3, 4, 5, 6, 8");
        if (c.quant.block != 32 && c.quant.block != 64 && c.quant.block != 128 && c.quant.block != 256)
            return err("'quantization.block' must be one of 32, 64, 128, 256");
    } else if (f != "none") {
        static const char* const ggml[] = {"q8_0", "q4_0", "q4_K", "q5_K", "q6_K"};
        bool known = false;
        for (const char* g : ggml) known = known || f == g;
        if (!known) return err("'quantization.format' is '" + f + "' (none, ef, q8_0, q4_0, q4_K, q5_K, q6_K)");
    }
    return Status::success();
}

uint64_t estimate_activation_bytes(const ModelConfig& c, const std::vector<LayerDesc>& layers, int64_t B, int64_t T) {
    // The same terms as TrainModel::activation_bytes (train_model.cpp).
    const uint64_t N = uint64_t(B * T), C = uint64_t(c.dim), F = uint64_t(c.ffn_hidden), V = uint64_t(c.vocab_size);
    const uint64_t H = uint64_t(c.attn.n_heads), qd = H * uint64_t(c.attn.head_dim),
                   kvd = uint64_t(c.attn.n_kv_heads * c.attn.head_dim);
    const uint64_t di = uint64_t(c.ssm.d_inner), Ns = uint64_t(c.ssm.d_state);
    uint64_t floats = N * (3 * C + V + 1) + N * V;
    for (const LayerDesc& L : layers) {
        floats += N * (5 * C + 2) + N * 3 * F;
        floats += N * (2 * qd + 2 * kvd) + uint64_t(B) * H * uint64_t(T * T);
        if (L.mixer != MixerKind::Routed) continue;
        if (L.ssm_branch == MixerKind::Mamba1) {
            floats += N * (9 * di + uint64_t(c.ssm.dt_rank) + 2 * Ns) + uint64_t(B * (T + 1)) * di * Ns;
        } else {
            const uint64_t G = uint64_t(c.ssm.n_groups), conv_dim = di + 2 * G * Ns;
            floats += N * (6 * di + 2 * conv_dim + 2 * G * Ns + uint64_t(c.ssm.n_heads) + G) + uint64_t(B * (T + 1)) * di * Ns;
        }
    }
    return floats * sizeof(float);
}

std::string format_bytes(uint64_t bytes) {
    char buf[64];
    const double b = double(bytes);
    if (b >= double(1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
    else if (b >= double(1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / double(1ull << 20));
    else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
    return buf;
}

}  // namespace ef::train
