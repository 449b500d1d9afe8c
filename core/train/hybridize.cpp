// hybridize(): a dense llama + a Mamba-2 branch and a router gate per layer (see hybridize.h).
#include "core/train/hybridize.h"

#include <algorithm>
#include <cmath>

#include "core/arch/architecture.h"

namespace ef::train {

namespace {

std::string blk(int64_t layer, std::string_view rest) { return "blk." + std::to_string(layer) + "." + std::string(rest); }

// Seeded normals: splitmix64 and Box-Muller (reproducible for a given seed and tensor).
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return (double(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }  // (0, 1)
    float normal() { return float(std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform())); }
};

uint64_t name_seed(uint64_t seed, const std::string& name) {
    uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a over the name
    for (char ch : name) h = (h ^ uint8_t(ch)) * 1099511628211ull;
    return h;
}

void fill_normal(std::vector<float>& v, float stddev, uint64_t seed, const std::string& name) {
    Rng r{name_seed(seed, name)};
    for (float& x : v) x = stddev * r.normal();
}

// Rows [row0, row0 + n) of dst: (R, cols) = rows [src0, src0 + n) of src: (Rs, cols).
void copy_rows(std::vector<float>& dst, int64_t row0, const std::vector<float>& src, int64_t src0, int64_t n, int64_t cols) {
    std::copy_n(src.begin() + src0 * cols, n * cols, dst.begin() + row0 * cols);
}

}  // namespace

Result<Model> hybridize(const Model& dense, const HybridizeOptions& o) {
    const std::string origin = dense.source_path.empty() ? "model '" + dense.architecture + "'" : dense.source_path;
    if (dense.architecture != "llama")
        return make_error(origin + ": hybridize needs a dense llama model, not architecture '" + dense.architecture + "'");
    EF_TRY_STATUS(validate_model(dense, origin));
    if (!(o.gate_init > 0.0f && o.gate_init < 1.0f))
        return make_error("hybridize: gate_init must lie strictly between 0 and 1 (got " + std::to_string(o.gate_init) + ")");
    if (!(o.router_temperature > 0.0f))
        return make_error("hybridize: router temperature must be positive (got " + std::to_string(o.router_temperature) + ")");
    if (!(o.dt_min > 0.0f && o.dt_max >= o.dt_min) || !(o.a_min > 0.0f && o.a_max >= o.a_min))
        return make_error("hybridize: need 0 < dt_min <= dt_max and 0 < a_min <= a_max");

    const ModelConfig& dc = dense.config;
    const auto& ac = dc.attn;
    ModelConfig c = dc;
    c.ssm = SsmConfig{};
    c.ssm.d_inner = o.d_inner > 0 ? o.d_inner : ac.n_heads * ac.head_dim;
    c.ssm.n_heads = o.ssm_heads > 0 ? o.ssm_heads : ac.n_heads;
    c.ssm.n_groups = o.n_groups > 0 ? o.n_groups : ac.n_kv_heads;
    c.ssm.d_state = o.d_state > 0 ? o.d_state : ac.head_dim;
    c.ssm.d_conv = o.d_conv;
    c.router_temperature = o.router_temperature;
    const auto& sc = c.ssm;
    if (sc.d_conv < 1 || sc.d_inner % sc.n_heads != 0 || sc.n_heads % sc.n_groups != 0 || sc.d_inner % sc.n_groups != 0)
        return make_error("hybridize: impossible SSM shape: d_inner " + std::to_string(sc.d_inner) + ", heads " +
                          std::to_string(sc.n_heads) + ", groups " + std::to_string(sc.n_groups) + ", d_conv " +
                          std::to_string(sc.d_conv) + " (d_inner must divide into heads, heads into groups)");

    Model m;
    m.architecture = "edgefusion";
    m.config = c;
    m.layers.assign(size_t(c.n_layers), LayerDesc{MixerKind::Routed, MixerKind::Mamba2, FfnKind::SwiGLU});
    m.vocab = dense.vocab;
    for (const auto& [k, v] : dense.metadata)  // keys of the dense row's own namespace do not apply
        if (k.rfind(dense.architecture + ".", 0) != 0) m.metadata.emplace(k, v);
    m.source_format = dense.source_format;

    const ArchitectureInfo* arch = find_architecture("edgefusion");
    if (!arch) return make_error("hybridize: the edgefusion architecture is not registered");
    const int64_t C = c.dim, di = sc.d_inner, Ns = sc.d_state, G = sc.n_groups, H = sc.n_heads, K = sc.d_conv;
    const int64_t conv_dim = di + 2 * G * Ns, width = di + conv_dim + H;
    const int64_t D = ac.head_dim, KVH = ac.n_kv_heads, rep = ac.n_heads / KVH;
    // The copy works when the SSM mirrors the attention heads: x per head from V (GQA: the head's KV
    // group), B per group from K, C per group from the mean of the group's Q heads, out from O.
    const bool mirror = o.init_from_attention && di == ac.n_heads * D && H == ac.n_heads && G == KVH && Ns == D;
    const float a_init = o.router_temperature * std::log(o.gate_init / (1.0f - o.gate_init));

    for (const TensorSpec& sp : arch->tensor_specs(c, m.layers)) {
        if (const Tensor* t = dense.find(sp.name)) {  // a dense tensor: kept as it is
            if (t->shape != sp.shape)
                return make_error(origin + ": tensor '" + sp.name + "' has shape " + shape_to_string(t->shape) + ", expected " +
                                  shape_to_string(sp.shape));
            m.add(*t);
            continue;
        }
        if (sp.optional) continue;
        const int64_t il = sp.layer;
        const std::string base = sp.name.substr(sp.name.find('.', 4) + 1);  // after "blk.N."
        auto n = shape_numel(sp.shape);
        if (!n) return make_error("hybridize: bad shape for '" + sp.name + "'");
        std::vector<float> v(size_t(*n), 0.0f);
        auto f32 = [&](const char* name) -> Result<std::vector<float>> {
            const Tensor* t = dense.find(blk(il, name));
            if (!t) return make_error(origin + ": tensor '" + blk(il, name) + "' is missing");
            return t->to_f32();
        };
        if (base == "ssm_in.weight") {  // rows [z; x; B; C; dt], each (C) wide
            fill_normal(v, 1.0f / std::sqrt(float(C)), o.seed, sp.name);
            for (int64_t i = (di + conv_dim) * C; i < width * C; ++i) v[size_t(i)] *= 0.1f;  // dt rows: small
            if (mirror) {
                auto wq = f32("attn_q.weight");
                auto wk = f32("attn_k.weight");
                auto wv = f32("attn_v.weight");
                if (!wq) return wq.error();
                if (!wk) return wk.error();
                if (!wv) return wv.error();
                for (int64_t h = 0; h < H; ++h) copy_rows(v, di + h * D, *wv, (h / rep) * D, D, C);
                copy_rows(v, 2 * di, *wk, 0, G * Ns, C);
                for (int64_t g = 0; g < G; ++g)
                    for (int64_t r = 0; r < Ns; ++r)
                        for (int64_t j = 0; j < C; ++j) {
                            double s = 0;
                            for (int64_t q = 0; q < rep; ++q) s += (*wq)[size_t(((g * rep + q) * D + r) * C + j)];
                            v[size_t((2 * di + G * Ns + g * Ns + r) * C + j)] = float(s / double(rep));
                        }
            }
        } else if (base == "ssm_conv1d.weight") {  // (conv_dim, K): pass the current input through
            for (int64_t ch = 0; ch < conv_dim; ++ch) v[size_t(ch * K + K - 1)] = 1.0f;
        } else if (base == "ssm_conv1d.bias") {
            // zeros
        } else if (base == "ssm_dt.bias") {  // inverse softplus of dt_h, log-uniform in [dt_min, dt_max]
            for (int64_t h = 0; h < H; ++h) {
                const double f = H > 1 ? double(h) / double(H - 1) : 0.5;
                const double dt = std::exp(std::log(o.dt_min) + f * (std::log(o.dt_max) - std::log(o.dt_min)));
                v[size_t(h)] = float(dt + std::log(-std::expm1(-dt)));
            }
        } else if (base == "ssm_a") {  // stored as A = -exp(A_log) (negative)
            for (int64_t h = 0; h < H; ++h) {
                const double f = H > 1 ? double(h) / double(H - 1) : 0.5;
                v[size_t(h)] = -float(o.a_min + f * (o.a_max - o.a_min));
            }
        } else if (base == "ssm_norm.weight" && mirror) {
            // The grouped norm leaves y at unit RMS; attention's output is a mix of V rows, so start the
            // branch at V's scale: channel h*P + p gets the RMS that V's channel has for a normalised input
            // of unit RMS, || Wv[kv(h)*D + p, :] * attn_norm ||.
            auto wv = f32("attn_v.weight");
            auto an = f32("attn_norm.weight");
            if (!wv) return wv.error();
            if (!an) return an.error();
            for (int64_t h = 0; h < H; ++h)
                for (int64_t p = 0; p < D; ++p) {
                    double s = 0;
                    for (int64_t j = 0; j < C; ++j) {
                        const double e = double((*wv)[size_t(((h / rep) * D + p) * C + j)]) * (*an)[size_t(j)];
                        s += e * e;
                    }
                    v[size_t(h * D + p)] = float(std::sqrt(s));
                }
        } else if (base == "ssm_d" || base == "ssm_norm.weight") {
            std::fill(v.begin(), v.end(), 1.0f);
        } else if (base == "ssm_out.weight") {  // (dim, di)
            if (mirror) {
                auto wo = f32("attn_output.weight");
                if (!wo) return wo.error();
                v = std::move(wo.value());
            } else {
                fill_normal(v, 1.0f / std::sqrt(float(di)), o.seed, sp.name);
            }
        } else if (base == "router_gate") {
            v[0] = a_init;
        } else {
            return make_error("hybridize: no initialisation for tensor '" + sp.name + "'");
        }
        auto t = Tensor::from_f32(sp.name, sp.shape, v, DType::F32);
        if (!t) return t.error();
        m.add(std::move(t.value()));
    }
    EF_TRY_STATUS(validate_model(m, "hybridize(" + origin + ")"));
    return m;
}

}  // namespace ef::train
