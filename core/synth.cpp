#include "core/synth.h"

#include <algorithm>
#include <cmath>

#include "core/arch/architecture.h"

namespace ef {
namespace {

// splitmix64: tiny, fast and fully specified, so streams match on every platform.
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
    // Irwin-Hall sum of 4 uniforms, standardised: mean 0, variance 1, bounded by +-3.46. Exact
    // double arithmetic only, unlike Box-Muller's log/cos, so results never depend on the libm.
    double normal() {
        const double s4 = uniform() + uniform() + uniform() + uniform();
        return (s4 - 2.0) * 1.7320508075688772;  // sqrt(12 / 4)
    }
};

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

bool ends_with(const std::string& s, std::string_view suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Which tensors take opts.type: llama.cpp's quantize rule (2-D+, name ends in "weight", not a norm,
// not the tiny ssm_conv1d).
bool converts(const TensorSpec& s) {
    return s.shape.size() >= 2 && ends_with(s.name, "weight") && s.name.find("_norm.weight") == std::string::npos &&
           s.name.find("ssm_conv1d") == std::string::npos;
}

// Values for one tensor, by role. Matrices ~ N(0, 1/fan_in); residual outputs further scaled by
// 1/sqrt(2 * n_layers) so activations stay O(1) through the stack.
std::vector<float> init_values(const TensorSpec& s, const ModelConfig& c, uint64_t seed) {
    Rng rng{seed ^ fnv1a(s.name)};
    const int64_t n = *shape_numel(s.shape);
    std::vector<float> v(size_t(n), 0.0f);
    const std::string& nm = s.name;
    if (ends_with(nm, "norm.weight")) {
        std::fill(v.begin(), v.end(), 1.0f);
    } else if (ends_with(nm, ".ssm_a")) {
        if (s.shape.size() == 2 && s.shape[1] == 1) {
            // Mamba-2: one scalar per head, A = -a with a ~ U[1, 16] (Mamba-2's A_log init).
            for (auto& x : v) x = -float(1.0 + 15.0 * rng.uniform());
        } else {
            // Mamba-1 S4D-real init: A[c, n] = -exp(log(n + 1)) = -(n + 1).
            const int64_t N = s.shape.back();
            for (int64_t i = 0; i < n; ++i) v[size_t(i)] = -float(i % N + 1);
        }
    } else if (ends_with(nm, ".ssm_d")) {
        std::fill(v.begin(), v.end(), 1.0f);
    } else if (ends_with(nm, "ssm_dt.bias")) {
        // dt ~ log-uniform in [1e-3, 1e-1]; the bias is softplus^-1(dt) = dt + log(1 - exp(-dt)).
        for (auto& x : v) {
            const double dt = std::exp(std::log(1e-3) + rng.uniform() * (std::log(1e-1) - std::log(1e-3)));
            x = float(dt + std::log(-std::expm1(-dt)));
        }
    } else if (ends_with(nm, "router_gate")) {
        for (auto& x : v) x = float(rng.normal());  // gate logits spread around 0 (g around 0.5)
    } else if (ends_with(nm, ".bias")) {
        // conv1d bias: zero
    } else if (s.shape.size() >= 2) {
        const double fan_in = double(s.shape.back());
        double std = 1.0 / std::sqrt(fan_in);
        if (ends_with(nm, "attn_output.weight") || ends_with(nm, "ffn_down.weight") || ends_with(nm, "ssm_out.weight"))
            std /= std::sqrt(2.0 * double(std::max<int64_t>(c.n_layers, 1)));
        for (auto& x : v) x = float(std * rng.normal());
    }
    return v;
}

}  // namespace

Result<Vocab> synth_vocab(int64_t n_tokens) {
    if (n_tokens < 260)
        return make_error("synthetic vocab needs at least 260 tokens (<unk>, <s>, </s>, 256 byte tokens and one piece), got " +
                          std::to_string(n_tokens));
    if (n_tokens > (int64_t(1) << 24)) return make_error("synthetic vocab of " + std::to_string(n_tokens) + " tokens is too large");
    Vocab v;
    v.model = "llama";
    auto push = [&](std::string t, float score, int32_t type) {
        v.max_token_length = std::max<int32_t>(v.max_token_length, int32_t(t.size()));
        v.tokens.push_back(std::move(t));
        v.scores.push_back(score);
        v.token_types.push_back(type);
    };
    push("<unk>", 0.0f, 2);
    push("<s>", 0.0f, 3);
    push("</s>", 0.0f, 3);
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) push(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 0.0f, 6);
    // Pieces: "▁" then every string over a small alphabet in length order, each with and without the
    // word-start marker, so any text tokenizes (with byte fallback) and every piece is unique.
    const std::string marker = "\xE2\x96\x81";  // U+2581
    const std::string alphabet = "etaoinshrdlcumwfgypbvkjxqz.,'!?-0123456789ETAOINSHRDLCUMWFGYPBVKJXQZ";
    std::vector<std::string> level{""};
    float score = 0.0f;
    if (int64_t(v.tokens.size()) < n_tokens) push(marker, score -= 1.0f, 1);
    while (int64_t(v.tokens.size()) < n_tokens) {
        std::vector<std::string> next;
        for (const auto& p : level)
            for (char ch : alphabet) next.push_back(p + ch);
        for (const auto& p : next) {
            if (int64_t(v.tokens.size()) < n_tokens) push(marker + p, score -= 1.0f, 1);
            if (int64_t(v.tokens.size()) < n_tokens) push(p, score -= 1.0f, 1);
            if (int64_t(v.tokens.size()) >= n_tokens) break;
        }
        level = std::move(next);
    }
    v.unk_id = 0;
    v.bos_id = 1;
    v.eos_id = 2;
    v.add_bos = true;
    return v;
}

Result<Model> synth_model(const SynthOptions& o, Progress& progress) {
    const ArchitectureInfo* arch = find_architecture(o.arch);
    if (!arch) {
        std::string known;
        for (const auto* a : architectures()) known += (known.empty() ? "" : ", ") + std::string(a->name);
        return make_error("synth: unknown architecture '" + o.arch + "' (known: " + known + ")");
    }
    const std::string who = "synth " + std::string(arch->name) + ": ";
    if (o.dim <= 0 || o.n_layers <= 0 || o.vocab <= 0)
        return make_error(who + "dim, n_layers and vocab must be positive (got " + std::to_string(o.dim) + ", " +
                          std::to_string(o.n_layers) + ", " + std::to_string(o.vocab) + ")");
    auto vocab = synth_vocab(o.vocab);
    if (!vocab) return make_error(who + vocab.message());

    if (o.n_heads && *o.n_heads > 0 && !o.head_dim && o.dim % *o.n_heads != 0)
        return make_error(who + "dim (" + std::to_string(o.dim) + ") is not divisible by n_heads (" + std::to_string(*o.n_heads) +
                          "); set head_dim explicitly");
    ModelConfig c;
    c.vocab_size = o.vocab;
    c.dim = o.dim;
    c.n_layers = o.n_layers;
    c.tied_embeddings = o.tied_embeddings;
    auto set = [](int64_t& field, const std::optional<int64_t>& v) {
        if (v) field = *v;
    };
    set(c.attn.n_heads, o.n_heads);
    set(c.attn.n_kv_heads, o.n_kv_heads);
    set(c.attn.head_dim, o.head_dim);
    set(c.attn.rope_dim, o.rope_dim);
    set(c.ffn_hidden, o.ffn_hidden);
    set(c.context_length, o.context_length);
    set(c.ssm.d_inner, o.d_inner);
    set(c.ssm.d_state, o.d_state);
    set(c.ssm.d_conv, o.d_conv);
    set(c.ssm.dt_rank, o.dt_rank);
    set(c.ssm.n_heads, o.ssm_heads);
    set(c.ssm.n_groups, o.ssm_groups);
    if (o.router_temperature) c.router_temperature = *o.router_temperature;
    if (o.ssm_version) {
        if (!arch->traits.routed) return make_error(who + "ssm_version only applies to routed architectures (edgefusion)");
        if (*o.ssm_version != 1 && *o.ssm_version != 2) return make_error(who + "ssm_version must be 1 or 2");
        // The routed row picks its SSM branch from the config: a dt_rank without SSM heads is Mamba-1.
        if (*o.ssm_version == 1) {
            if (o.ssm_heads || o.ssm_groups) return make_error(who + "ssm_heads / ssm_groups are Mamba-2 settings, not for ssm_version 1");
            if (!o.dt_rank) c.ssm.dt_rank = (o.dim + 15) / 16;
        } else if (o.dt_rank) {
            return make_error(who + "dt_rank is a Mamba-1 setting, not for ssm_version 2");
        }
    }
    arch->complete_config(c);
    std::vector<LayerDesc> layers = o.layers ? *o.layers : arch->default_layers(c);
    if (Status s = validate_config(*arch, c, layers); !s) return make_error("synth: " + s.message());

    Model m;
    m.architecture = std::string(arch->name);
    m.config = c;
    m.layers = std::move(layers);
    m.vocab = std::move(vocab.value());
    m.metadata["general.name"] = MetaValue::str("synthetic " + std::string(arch->name));

    const auto specs = arch->tensor_specs(m.config, m.layers);
    const DType embed_type = o.embedding_type.value_or(o.type);
    int64_t convertible = 0, converted = 0;
    std::string fallback_example;
    for (size_t i = 0; i < specs.size(); ++i) {
        if (progress.cancelled()) return make_error(who + "cancelled");
        const TensorSpec& s = specs[i];
        if (s.optional) continue;  // e.g. output.weight with tied embeddings
        const bool embed = s.name == "token_embd.weight" || s.name == "output.weight";
        DType t = converts(s) ? (embed ? embed_type : o.type) : DType::F32;
        // Like llama.cpp's quantizer: a tensor whose rows do not fill whole blocks (e.g. Mamba's
        // ssm_dt with a small dt_rank) keeps a plain type instead of failing the whole model.
        if (converts(s)) ++convertible;
        if (s.shape.back() % type_traits(t).block_size != 0) {
            if (fallback_example.empty())
                fallback_example = s.name + " (row length " + std::to_string(s.shape.back()) + ")";
            t = DType::F32;
        } else if (converts(s)) {
            ++converted;
        }
        const std::vector<float> values = init_values(s, m.config, o.seed);
        auto tensor = Tensor::from_f32(s.name, s.shape, values, t);
        if (!tensor) return make_error(who + tensor.message());
        m.add(std::move(tensor.value()));
        progress.report(double(i + 1) / double(specs.size()), "synthesizing " + s.name);
    }
    // Asking for a type that no weight matrix can hold is a mistake, not a silent F32 model.
    if (convertible > 0 && converted == 0)
        return make_error(who + "no weight matrix fits " + std::string(dtype_name(o.type)) + "'s block size " +
                          std::to_string(type_traits(o.type).block_size) + ", e.g. " + fallback_example);
    return m;
}

}  // namespace ef
