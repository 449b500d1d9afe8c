// The architecture table: tensor specs against llama.cpp's create_tensor shapes (written out here
// by hand from src/models/<arch>.cpp, as GGUF ne), GGUF keys llama.cpp's loader requires, HF names,
// and config validation.
#include <QtTest>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/arch/architecture.h"
#include "core/synth.h"

using namespace ef;

namespace {

const QStringList kArchs{"llama", "mamba", "mamba2", "granitehybrid", "jamba", "edgefusion"};

// Expected tensors as llama.cpp writes them: name -> ne (innermost first).
using NeMap = std::map<std::string, std::vector<int64_t>>;

Shape reversed(std::vector<int64_t> ne) { return Shape(ne.rbegin(), ne.rend()); }

void compare_specs(const std::vector<TensorSpec>& specs, const NeMap& expected) {
    std::map<std::string, Shape> got;
    for (const auto& s : specs) {
        QVERIFY2(!got.count(s.name), ("duplicate spec " + s.name).c_str());
        got[s.name] = s.shape;
    }
    for (const auto& [name, ne] : expected) {
        auto it = got.find(name);
        QVERIFY2(it != got.end(), ("missing spec " + name).c_str());
        QVERIFY2(it->second == reversed(ne),
                 (name + ": got " + shape_to_string(it->second) + ", llama.cpp ne reversed is " + shape_to_string(reversed(ne))).c_str());
    }
    for (const auto& [name, shape] : got) QVERIFY2(expected.count(name), ("unexpected spec " + name).c_str());
}

void add_global(NeMap& e, int64_t dim, int64_t vocab) {
    e["token_embd.weight"] = {dim, vocab};
    e["output_norm.weight"] = {dim};
    e["output.weight"] = {dim, vocab};
}

std::string b(int i, const char* rest) { return "blk." + std::to_string(i) + "." + rest; }

void add_attn(NeMap& e, int i, int64_t dim, int64_t heads, int64_t kv, int64_t hd) {
    e[b(i, "attn_q.weight")] = {dim, hd * heads};
    e[b(i, "attn_k.weight")] = {dim, hd * kv};
    e[b(i, "attn_v.weight")] = {dim, hd * kv};
    e[b(i, "attn_output.weight")] = {hd * heads, dim};
}

void add_ffn(NeMap& e, int i, int64_t dim, int64_t ff) {
    e[b(i, "ffn_norm.weight")] = {dim};
    e[b(i, "ffn_gate.weight")] = {dim, ff};
    e[b(i, "ffn_down.weight")] = {ff, dim};
    e[b(i, "ffn_up.weight")] = {dim, ff};
}

// llama.cpp models/mamba.cpp (and jamba.cpp with the three norms).
void add_mamba1(NeMap& e, int i, int64_t dim, int64_t di, int64_t dconv, int64_t ds, int64_t dtr, bool jamba) {
    e[b(i, "ssm_in.weight")] = {dim, 2 * di};
    e[b(i, "ssm_conv1d.weight")] = {dconv, di};
    e[b(i, "ssm_conv1d.bias")] = {di};
    e[b(i, "ssm_x.weight")] = {di, dtr + 2 * ds};
    e[b(i, "ssm_dt.weight")] = {dtr, di};
    e[b(i, "ssm_dt.bias")] = {di};
    e[b(i, "ssm_a")] = {ds, di};
    e[b(i, "ssm_d")] = {di};
    e[b(i, "ssm_out.weight")] = {di, dim};
    if (jamba) {
        e[b(i, "ssm_dt_norm.weight")] = {dtr};
        e[b(i, "ssm_b_norm.weight")] = {ds};
        e[b(i, "ssm_c_norm.weight")] = {ds};
    }
}

// llama.cpp models/mamba2.cpp / granite-hybrid.cpp: d_in_proj = 2*d_inner + 2*n_group*d_state + n_head.
void add_mamba2(NeMap& e, int i, int64_t dim, int64_t di, int64_t dconv, int64_t ds, int64_t ng, int64_t nh) {
    e[b(i, "ssm_in.weight")] = {dim, 2 * di + 2 * ng * ds + nh};
    e[b(i, "ssm_conv1d.weight")] = {dconv, di + 2 * ng * ds};
    e[b(i, "ssm_conv1d.bias")] = {di + 2 * ng * ds};
    e[b(i, "ssm_dt.bias")] = {nh};
    e[b(i, "ssm_a")] = {1, nh};
    e[b(i, "ssm_d")] = {1, nh};
    e[b(i, "ssm_norm.weight")] = {di / ng, ng};
    e[b(i, "ssm_out.weight")] = {di, dim};
}

ModelConfig base_config() {
    ModelConfig c;
    c.vocab_size = 300;
    c.dim = 64;
    c.n_layers = 2;
    c.context_length = 128;
    return c;
}

const LayerDesc kAttn{MixerKind::Attention, MixerKind::Mamba2, FfnKind::SwiGLU};

Model synth(const QString& arch, uint64_t seed = 1, int64_t n_layers = 4) {
    SynthOptions o;
    o.arch = arch.toStdString();
    o.dim = 64;
    o.n_layers = n_layers;
    o.vocab = 300;
    o.seed = seed;
    auto m = synth_model(o);
    if (!m) qFatal("%s", m.message().c_str());
    return std::move(m.value());
}

}  // namespace

class TestArchitectures : public QObject {
    Q_OBJECT

private slots:
    void table() {
        const auto& t = architectures();
        QCOMPARE(int(t.size()), kArchs.size());
        for (int i = 0; i < kArchs.size(); ++i) QCOMPARE(QString::fromUtf8(t[size_t(i)]->name.data(), int(t[size_t(i)]->name.size())), kArchs[i]);
        QVERIFY(find_architecture("nope") == nullptr);
        QCOMPARE(find_architecture_by_hf("LlamaForCausalLM"), find_architecture("llama"));
        QCOMPARE(find_architecture_by_hf("MambaForCausalLM"), find_architecture("mamba"));
        QCOMPARE(find_architecture_by_hf("Mamba2ForCausalLM"), find_architecture("mamba2"));
        QCOMPARE(find_architecture_by_hf("GraniteMoeHybridForCausalLM"), find_architecture("granitehybrid"));
        QCOMPARE(find_architecture_by_hf("JambaForCausalLM"), find_architecture("jamba"));
        QCOMPARE(find_architecture_by_hf("EdgeFusionForCausalLM"), find_architecture("edgefusion"));
        QVERIFY(find_architecture_by_hf("GPT2LMHeadModel") == nullptr);
    }

    void llama_specs() {
        ModelConfig c = base_config();
        c.attn = {8, 2, 8, 8, 10000.0f, 0.0f};
        c.ffn_hidden = 172;
        std::vector<LayerDesc> l(2, kAttn);
        NeMap e;
        add_global(e, 64, 300);
        for (int i = 0; i < 2; ++i) {
            e[b(i, "attn_norm.weight")] = {64};
            add_attn(e, i, 64, 8, 2, 8);
            add_ffn(e, i, 64, 172);
        }
        const auto* a = find_architecture("llama");
        QVERIFY(validate_config(*a, c, l).ok());
        compare_specs(a->tensor_specs(c, l), e);
    }

    void mamba_specs() {
        ModelConfig c = base_config();
        c.ssm = {4, 128, 16, 4, 0, 0};
        std::vector<LayerDesc> l(2, LayerDesc{MixerKind::Mamba1, MixerKind::Mamba2, FfnKind::None});
        NeMap e;
        add_global(e, 64, 300);
        for (int i = 0; i < 2; ++i) {
            e[b(i, "attn_norm.weight")] = {64};
            add_mamba1(e, i, 64, 128, 4, 16, 4, false);
        }
        const auto* a = find_architecture("mamba");
        QVERIFY2(validate_config(*a, c, l).ok(), validate_config(*a, c, l).ok() ? "" : validate_config(*a, c, l).message().c_str());
        compare_specs(a->tensor_specs(c, l), e);
    }

    void mamba2_specs() {
        ModelConfig c = base_config();
        c.ssm = {4, 128, 16, 0, 2, 4};
        std::vector<LayerDesc> l(2, LayerDesc{MixerKind::Mamba2, MixerKind::Mamba2, FfnKind::None});
        NeMap e;
        add_global(e, 64, 300);
        for (int i = 0; i < 2; ++i) {
            e[b(i, "attn_norm.weight")] = {64};
            add_mamba2(e, i, 64, 128, 4, 16, 2, 4);
        }
        // Spot-check the formula once more with plain numbers: 2*128 + 2*2*16 + 4 = 324.
        QCOMPARE(e[b(0, "ssm_in.weight")][1], int64_t(324));
        const auto* a = find_architecture("mamba2");
        QVERIFY(validate_config(*a, c, l).ok());
        compare_specs(a->tensor_specs(c, l), e);
    }

    void granitehybrid_specs() {
        ModelConfig c = base_config();
        c.attn = {4, 2, 16, 0, 10000.0f, 0.0f};
        c.ffn_hidden = 96;
        c.ssm = {4, 128, 16, 0, 1, 2};
        std::vector<LayerDesc> l{LayerDesc{MixerKind::Mamba2, MixerKind::Mamba2, FfnKind::SwiGLU}, kAttn};
        NeMap e;
        add_global(e, 64, 300);
        e[b(0, "attn_norm.weight")] = {64};
        e[b(1, "attn_norm.weight")] = {64};
        add_mamba2(e, 0, 64, 128, 4, 16, 1, 2);
        add_attn(e, 1, 64, 4, 2, 16);
        add_ffn(e, 0, 64, 96);  // dense ffn_gate/up/down on every layer when expert_count is 0
        add_ffn(e, 1, 64, 96);
        const auto* a = find_architecture("granitehybrid");
        auto st = validate_config(*a, c, l);
        QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
        compare_specs(a->tensor_specs(c, l), e);
    }

    void jamba_specs() {
        ModelConfig c = base_config();
        c.attn = {4, 2, 16, 0, 10000.0f, 0.0f};
        c.ffn_hidden = 96;
        c.ssm = {4, 128, 16, 4, 0, 0};
        std::vector<LayerDesc> l{LayerDesc{MixerKind::Mamba1, MixerKind::Mamba2, FfnKind::SwiGLU}, kAttn};
        NeMap e;
        add_global(e, 64, 300);
        e[b(0, "attn_norm.weight")] = {64};
        e[b(1, "attn_norm.weight")] = {64};
        add_mamba1(e, 0, 64, 128, 4, 16, 4, true);
        add_attn(e, 1, 64, 4, 2, 16);
        add_ffn(e, 0, 64, 96);
        add_ffn(e, 1, 64, 96);
        const auto* a = find_architecture("jamba");
        auto st = validate_config(*a, c, l);
        QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
        compare_specs(a->tensor_specs(c, l), e);
    }

    void edgefusion_specs_data() {
        QTest::addColumn<int>("version");
        QTest::newRow("mamba2 branch") << 2;
        QTest::newRow("mamba1 branch") << 1;
    }
    void edgefusion_specs() {
        QFETCH(int, version);
        ModelConfig c = base_config();
        c.attn = {4, 4, 16, 16, 10000.0f, 0.0f};
        c.ffn_hidden = 96;
        const MixerKind br = version == 1 ? MixerKind::Mamba1 : MixerKind::Mamba2;
        c.ssm = version == 1 ? SsmConfig{4, 128, 16, 4, 0, 0} : SsmConfig{4, 128, 16, 0, 1, 2};
        std::vector<LayerDesc> l(2, LayerDesc{MixerKind::Routed, br, FfnKind::SwiGLU});
        NeMap e;
        add_global(e, 64, 300);
        for (int i = 0; i < 2; ++i) {
            e[b(i, "attn_norm.weight")] = {64};
            add_attn(e, i, 64, 4, 4, 16);
            if (version == 1) add_mamba1(e, i, 64, 128, 4, 16, 4, false);
            else add_mamba2(e, i, 64, 128, 4, 16, 1, 2);
            e[b(i, "router_gate")] = {1};
            add_ffn(e, i, 64, 96);
        }
        const auto* a = find_architecture("edgefusion");
        auto st = validate_config(*a, c, l);
        QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
        compare_specs(a->tensor_specs(c, l), e);
    }

    void tied_output_is_optional() {
        ModelConfig c = base_config();
        c.attn = {8, 8, 8, 8, 10000.0f, 0.0f};
        c.ffn_hidden = 64;
        c.tied_embeddings = true;
        for (const auto& s : find_architecture("llama")->tensor_specs(c, std::vector<LayerDesc>(2, kAttn)))
            QCOMPARE(s.optional, s.name == "output.weight");
    }

    // Keys llama.cpp's loader reads as required for the row (llama-model.cpp load_hparams and
    // models/<arch>.cpp load_arch_hparams), with the GGUF types its strict getters accept.
    void gguf_keys_llama_requires_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QStringList>("u32_keys");
        const QStringList common{"context_length", "embedding_length", "block_count"};
        QTest::newRow("llama") << "llama" << (common + QStringList{"feed_forward_length", "attention.head_count", "attention.head_count_kv", "rope.dimension_count"});
        QTest::newRow("mamba") << "mamba" << (common + QStringList{"ssm.conv_kernel", "ssm.inner_size", "ssm.state_size", "ssm.time_step_rank"});
        QTest::newRow("mamba2") << "mamba2" << (common + QStringList{"ssm.conv_kernel", "ssm.inner_size", "ssm.state_size", "ssm.time_step_rank", "ssm.group_count"});
        QTest::newRow("granitehybrid") << "granitehybrid" << (common + QStringList{"feed_forward_length", "attention.head_count", "ssm.conv_kernel", "ssm.inner_size", "ssm.state_size", "ssm.time_step_rank", "ssm.group_count"});
        QTest::newRow("jamba") << "jamba" << (common + QStringList{"feed_forward_length", "attention.head_count", "ssm.conv_kernel", "ssm.inner_size", "ssm.state_size", "ssm.time_step_rank"});
        QTest::newRow("edgefusion") << "edgefusion" << (common + QStringList{"feed_forward_length", "attention.head_count", "ssm.version", "ssm.time_step_rank"});
    }
    void gguf_keys_llama_requires() {
        QFETCH(QString, arch);
        QFETCH(QStringList, u32_keys);
        Model m = synth(arch);
        Metadata kv;
        find_architecture(m.architecture)->write_gguf(m.config, m.layers, kv);
        const std::string p = arch.toStdString() + ".";
        for (const auto& k : u32_keys) {
            auto it = kv.find(p + k.toStdString());
            QVERIFY2(it != kv.end(), qPrintable("missing " + k));
            QVERIFY2(it->second.type == MetaType::U32, qPrintable(k + " is not u32"));
        }
        auto eps = kv.find(p + "attention.layer_norm_rms_epsilon");
        QVERIFY(eps != kv.end() && eps->second.type == MetaType::F32);
        QVERIFY(!kv.count("general.architecture"));  // the GGUF writer owns it
        if (arch == "granitehybrid" || arch == "jamba") {
            // Per-layer KV heads; 0 marks the SSM layers (llama.cpp's is_recr).
            auto it = kv.find(p + "attention.head_count_kv");
            QVERIFY(it != kv.end() && it->second.type == MetaType::Array);
            QCOMPARE(int64_t(it->second.array.size()), m.config.n_layers);
            for (size_t i = 0; i < m.layers.size(); ++i)
                QCOMPARE(*it->second.array[i].as_int(), m.layers[i].mixer == MixerKind::Attention ? m.config.attn.n_kv_heads : 0);
        }
        if (arch == "granitehybrid") {
            for (const char* k : {"embedding_scale", "residual_scale", "logit_scale"})
                QVERIFY(kv.count(p + k) && kv.at(p + k).type == MetaType::F32);
            QVERIFY(kv.count(p + "rope.scaling.finetuned") && kv.at(p + "rope.scaling.finetuned").type == MetaType::Bool);
        }
        if (arch == "edgefusion") QVERIFY(kv.count(p + "router.temperature"));
    }

    void gguf_roundtrip_data() {
        QTest::addColumn<QString>("arch");
        for (const auto& a : kArchs) QTest::newRow(qPrintable(a)) << a;
    }
    void gguf_roundtrip() {
        QFETCH(QString, arch);
        Model m = synth(arch);
        const auto* a = find_architecture(m.architecture);
        Metadata kv;
        a->write_gguf(m.config, m.layers, kv);
        ModelConfig c;
        std::vector<LayerDesc> l;
        auto st = a->read_gguf(kv, c, l);
        QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
        QVERIFY(c == m.config);
        QVERIFY(l == m.layers);
    }

    void gguf_read_errors() {
        Model m = synth("granitehybrid", 1, 8);  // attention on layers 3 and 7
        const auto* a = find_architecture("granitehybrid");
        Metadata kv;
        a->write_gguf(m.config, m.layers, kv);
        {
            Metadata k2 = kv;
            k2.erase("granitehybrid.ssm.state_size");
            ModelConfig c;
            std::vector<LayerDesc> l;
            auto st = a->read_gguf(k2, c, l);
            QVERIFY(!st.ok());
            QVERIFY2(st.message().find("granitehybrid.ssm.state_size") != std::string::npos, st.message().c_str());
        }
        {
            Metadata k2 = kv;
            auto& arr = k2["granitehybrid.attention.head_count_kv"].array;
            arr[3] = MetaValue::i32(1);  // layer 3 is attention: give it a different KV head count than 7
            arr[7] = MetaValue::i32(2);
            ModelConfig c;
            std::vector<LayerDesc> l;
            auto st = a->read_gguf(k2, c, l);
            QVERIFY(!st.ok());
            QVERIFY2(st.message().find("differs between layers") != std::string::npos, st.message().c_str());
        }
        {
            Metadata k2 = kv;
            k2["granitehybrid.attention.head_count_kv"].array.pop_back();
            ModelConfig c;
            std::vector<LayerDesc> l;
            auto st = a->read_gguf(k2, c, l);
            QVERIFY(!st.ok());
            QVERIFY2(st.message().find("one per layer") != std::string::npos, st.message().c_str());
        }
        {
            Metadata k2 = kv;
            k2["granitehybrid.embedding_length"] = MetaValue::str("64");
            ModelConfig c;
            std::vector<LayerDesc> l;
            auto st = a->read_gguf(k2, c, l);
            QVERIFY(!st.ok());
            QVERIFY2(st.message().find("expected an integer") != std::string::npos, st.message().c_str());
        }
    }

    void hf_config_roundtrip_data() { gguf_roundtrip_data(); }
    void hf_config_roundtrip() {
        QFETCH(QString, arch);
        Model m = synth(arch);
        const auto* a = find_architecture(m.architecture);
        nlohmann::json j;
        a->write_hf_config(m.config, m.layers, j);
        QVERIFY(j["architectures"].is_array());
        QCOMPARE(find_architecture_by_hf(j["architectures"][0].get<std::string>()), a);
        ModelConfig c;
        std::vector<LayerDesc> l;
        auto st = a->read_hf_config(j, c, l);
        QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
        QVERIFY(c == m.config);
        QVERIFY(l == m.layers);
        if (arch == "granitehybrid") {
            // Granite states its attention scale explicitly; a non-default one survives the trip.
            QCOMPARE(j["attention_multiplier"].get<double>(), 1.0 / std::sqrt(double(m.config.attn.head_dim)));
            m.config.attn.scale = 0.0078125f;
            a->write_hf_config(m.config, m.layers, j);
            QVERIFY(a->read_hf_config(j, c, l).ok());
            QCOMPARE(c.attn.scale, 0.0078125f);
        }
    }

    void hf_config_errors_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("expect");
        QTest::newRow("llama heads") << "llama"
                                     << R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"num_hidden_layers":2,"vocab_size":300,"intermediate_size":128,"num_attention_heads":5})"
                                     << "not divisible by 'num_attention_heads'";
        QTest::newRow("llama missing") << "llama" << R"({"hidden_size":64,"num_hidden_layers":2,"vocab_size":300,"num_attention_heads":4})"
                                       << "missing 'intermediate_size'";
        QTest::newRow("llama kv") << "llama"
                                  << R"({"hidden_size":64,"num_hidden_layers":2,"vocab_size":300,"intermediate_size":128,"num_attention_heads":4,"num_key_value_heads":3})"
                                  << "not a multiple of 'num_key_value_heads'";
        QTest::newRow("wrong architectures") << "llama" << R"({"architectures":["MambaForCausalLM"],"hidden_size":64})" << "LlamaForCausalLM";
        QTest::newRow("mamba aliases") << "mamba" << R"({"hidden_size":64,"d_model":128,"num_hidden_layers":2,"vocab_size":300})"
                                       << "contradict";
        QTest::newRow("mamba2 heads") << "mamba2"
                                      << R"({"hidden_size":64,"num_hidden_layers":2,"vocab_size":300,"expand":2,"head_dim":32,"num_heads":8})"
                                      << "'num_heads'";
        QTest::newRow("granite layer_types") << "granitehybrid"
                                             << R"({"hidden_size":64,"num_hidden_layers":2,"vocab_size":300,"shared_intermediate_size":96,"num_attention_heads":4,"mamba_d_conv":4,"mamba_d_state":16,"mamba_n_groups":1,"mamba_n_heads":2,"layer_types":["mamba"]})"
                                             << "one entry per layer";
        QTest::newRow("granite moe") << "granitehybrid" << R"({"hidden_size":64,"num_hidden_layers":2,"vocab_size":300,"num_local_experts":4})"
                                     << "mixture-of-experts";
        QTest::newRow("jamba moe") << "jamba"
                                   << R"({"hidden_size":64,"num_hidden_layers":2,"vocab_size":300,"intermediate_size":96,"num_experts":16})"
                                   << "num_experts";
        QTest::newRow("edgefusion version") << "edgefusion"
                                            << R"({"hidden_size":64,"num_hidden_layers":2,"vocab_size":300,"intermediate_size":96,"num_attention_heads":4,"max_position_embeddings":64,"ssm_version":3})"
                                            << "ssm_version";
    }
    void hf_config_errors() {
        QFETCH(QString, arch);
        QFETCH(QString, json);
        QFETCH(QString, expect);
        ModelConfig c;
        std::vector<LayerDesc> l;
        auto st = find_architecture(arch.toStdString())->read_hf_config(nlohmann::json::parse(json.toStdString()), c, l);
        QVERIFY(!st.ok());
        QVERIFY2(st.message().find(expect.toStdString()) != std::string::npos, st.message().c_str());
        QVERIFY2(st.message().rfind("config.json", 0) == 0, st.message().c_str());
    }

    void hf_tensor_map_data() { gguf_roundtrip_data(); }
    void hf_tensor_map() {
        QFETCH(QString, arch);
        Model m = synth(arch);
        const auto* a = find_architecture(m.architecture);
        const auto specs = a->tensor_specs(m.config, m.layers);
        const auto map = a->hf_tensor_map(m.config, m.layers);
        std::map<std::string, const HfTensorMapping*> by_canon;
        std::map<std::string, int> hf_uses;
        for (const auto& h : map) {
            by_canon[h.canonical] = &h;
            hf_uses[h.hf_name]++;
            // Same elements: numel matches except for fused halves.
            const bool fused = h.transform == HfTransform::FusedRowsFirstHalf || h.transform == HfTransform::FusedRowsSecondHalf;
            const Tensor* t = m.find(h.canonical);
            QVERIFY2(t, h.canonical.c_str());
            QCOMPARE(*shape_numel(h.hf_shape), fused ? 2 * t->numel() : t->numel());
        }
        for (const auto& s : specs) QVERIFY2(by_canon.count(s.name), ("no HF name for " + s.name).c_str());
        for (const auto& [name, n] : hf_uses) QVERIFY2(n == 1 || (arch == "granitehybrid" && n == 2), name.c_str());

        // Names as transformers' modeling files spell them.
        auto hf = [&](const std::string& c) { return by_canon.at(c)->hf_name; };
        if (arch == "llama") {
            QCOMPARE(hf("blk.0.attn_q.weight"), std::string("model.layers.0.self_attn.q_proj.weight"));
            QVERIFY(by_canon.at("blk.0.attn_q.weight")->transform == HfTransform::RopePermuteQ);
            QVERIFY(by_canon.at("blk.0.attn_k.weight")->transform == HfTransform::RopePermuteK);
            QCOMPARE(hf("blk.1.ffn_down.weight"), std::string("model.layers.1.mlp.down_proj.weight"));
            QCOMPARE(hf("output.weight"), std::string("lm_head.weight"));
        } else if (arch == "mamba") {
            QCOMPARE(hf("token_embd.weight"), std::string("backbone.embeddings.weight"));
            QCOMPARE(hf("blk.2.ssm_a"), std::string("backbone.layers.2.mixer.A_log"));
            QVERIFY(by_canon.at("blk.2.ssm_a")->transform == HfTransform::NegExpOfLog);
            QCOMPARE(hf("blk.0.ssm_dt.bias"), std::string("backbone.layers.0.mixer.dt_proj.bias"));
            QVERIFY(by_canon.at("blk.0.ssm_conv1d.weight")->hf_shape == (Shape{128, 1, 4}));
            QCOMPARE(hf("output_norm.weight"), std::string("backbone.norm_f.weight"));
        } else if (arch == "mamba2") {
            QCOMPARE(hf("blk.0.ssm_dt.bias"), std::string("backbone.layers.0.mixer.dt_bias"));
            QVERIFY(by_canon.at("blk.0.ssm_a")->hf_shape == (Shape{m.config.ssm.n_heads}));
            QVERIFY(by_canon.at("blk.0.ssm_norm.weight")->hf_shape == (Shape{m.config.ssm.d_inner}));
        } else if (arch == "granitehybrid") {
            QCOMPARE(hf("blk.0.ffn_gate.weight"), std::string("model.layers.0.shared_mlp.input_linear.weight"));
            QVERIFY(by_canon.at("blk.0.ffn_gate.weight")->transform == HfTransform::FusedRowsFirstHalf);
            QVERIFY(by_canon.at("blk.0.ffn_up.weight")->transform == HfTransform::FusedRowsSecondHalf);
            QCOMPARE(hf("blk.0.ffn_down.weight"), std::string("model.layers.0.shared_mlp.output_linear.weight"));
            QCOMPARE(hf("blk.0.ssm_in.weight"), std::string("model.layers.0.mamba.in_proj.weight"));
            QCOMPARE(hf("blk.3.attn_q.weight"), std::string("model.layers.3.self_attn.q_proj.weight"));
        } else if (arch == "jamba") {
            QCOMPARE(hf("blk.0.ssm_dt_norm.weight"), std::string("model.layers.0.mamba.dt_layernorm.weight"));
            QCOMPARE(hf("blk.0.ffn_norm.weight"), std::string("model.layers.0.pre_ff_layernorm.weight"));
            QCOMPARE(hf("blk.0.ffn_gate.weight"), std::string("model.layers.0.feed_forward.gate_proj.weight"));
            QCOMPARE(hf("output_norm.weight"), std::string("model.final_layernorm.weight"));
            QVERIFY(by_canon.at("blk.3.attn_q.weight")->transform == HfTransform::None);
        } else if (arch == "edgefusion") {
            QCOMPARE(hf("blk.1.router_gate"), std::string("model.layers.1.router.gate_logit"));
        }
    }

    void validate_config_rejects_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("what");
        QTest::addColumn<QString>("expect");
        QTest::newRow("kv heads") << "llama" << "kv3" << "not divisible by n_kv_heads";
        QTest::newRow("negative dim") << "llama" << "negdim" << "dim = -64";
        QTest::newRow("plan length") << "mamba" << "plan" << "layer plan has";
        QTest::newRow("absurd") << "llama" << "huge" << "2^40";
        QTest::newRow("mamba2 heads") << "mamba2" << "ssmheads" << "not divisible by ssm n_heads";
        QTest::newRow("mamba expand") << "mamba" << "expand" << "d_inner = 2 * dim";
        QTest::newRow("wrong mixer") << "llama" << "mixer" << "mamba1 mixer";
        QTest::newRow("jamba rope") << "jamba" << "rope" << "rope_dim must be 0";
        QTest::newRow("mixed branches") << "edgefusion" << "branches" << "ssm.version";
        QTest::newRow("router temperature") << "edgefusion" << "temp" << "router_temperature";
        QTest::newRow("eps") << "granitehybrid" << "eps" << "norm_eps";
        QTest::newRow("llama granite scale") << "llama" << "scale" << "multipliers";
    }
    void validate_config_rejects() {
        QFETCH(QString, arch);
        QFETCH(QString, what);
        QFETCH(QString, expect);
        Model m = synth(arch);
        ModelConfig& c = m.config;
        auto& l = m.layers;
        if (what == "kv3") c.attn.n_kv_heads = 3;
        if (what == "negdim") c.dim = -64;
        if (what == "plan") l.pop_back();
        if (what == "huge") c.vocab_size = c.dim = int64_t(1) << 24;
        if (what == "ssmheads") c.ssm.n_heads = 3;
        if (what == "expand") c.ssm.d_inner = 3 * c.dim;
        if (what == "mixer") l[1].mixer = MixerKind::Mamba1;
        if (what == "rope") c.attn.rope_dim = c.attn.head_dim;
        if (what == "branches") {
            l[2].ssm_branch = MixerKind::Mamba1;
            c.ssm.dt_rank = 4;
        }
        if (what == "temp") c.router_temperature = 0.0f;
        if (what == "eps") c.norm_eps = -1.0f;
        if (what == "scale") c.logit_scale = 2.0f;
        auto st = validate_config(*find_architecture(m.architecture), c, l);
        QVERIFY(!st.ok());
        QVERIFY2(st.message().find(expect.toStdString()) != std::string::npos, st.message().c_str());
    }

    void validate_model_data() { gguf_roundtrip_data(); }
    void validate_model() {
        QFETCH(QString, arch);
        Model m = synth(arch);
        auto ok = ef::validate_model(m, "/tmp/x.gguf");
        QVERIFY2(ok.ok(), ok.ok() ? "" : ok.message().c_str());

        Model missing = m;
        missing.tensors.erase(missing.tensors.begin() + 3);
        auto st = ef::validate_model(missing, "/tmp/x.gguf");
        QVERIFY(!st.ok());
        QVERIFY2(st.message().rfind("/tmp/x.gguf: ", 0) == 0, st.message().c_str());
        QVERIFY2(st.message().find(m.tensors[3].name) != std::string::npos, st.message().c_str());

        Model extra = m;
        std::vector<float> one{1.0f};
        extra.add(Tensor::from_f32("blk.0.mystery.weight", {1}, one).value());
        st = ef::validate_model(extra, "/tmp/x.gguf");
        QVERIFY(!st.ok());
        QVERIFY2(st.message().find("blk.0.mystery.weight") != std::string::npos, st.message().c_str());

        Model bad_shape = m;
        for (auto& t : bad_shape.tensors)
            if (t.name == "output_norm.weight") t.shape = {t.shape[0] / 2, 2};
        st = ef::validate_model(bad_shape, "/tmp/x.gguf");
        QVERIFY(!st.ok());
        QVERIFY2(st.message().find("output_norm.weight has shape (32, 2)") != std::string::npos, st.message().c_str());

        // Bytes that do not fit the dtype (F32 data labelled Q8_0) are caught, naming the tensor.
        Model bad_type = m;
        for (auto& t : bad_type.tensors)
            if (t.name == "blk.0.attn_norm.weight") t.dtype = DType::Q8_0;
        st = ef::validate_model(bad_type, "/tmp/x.gguf");
        QVERIFY(!st.ok());
        QVERIFY2(st.message().find("blk.0.attn_norm.weight") != std::string::npos, st.message().c_str());

        Model unknown_arch = m;
        unknown_arch.architecture = "gpt2";
        st = ef::validate_model(unknown_arch, "/tmp/x.gguf");
        QVERIFY(!st.ok() && st.message().find("unknown architecture 'gpt2'") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestArchitectures)
#include "test_architectures.moc"
