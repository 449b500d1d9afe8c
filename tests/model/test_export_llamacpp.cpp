// The llama.cpp export (quant/export_llamacpp.h): hard-gated edgefusion models as granitehybrid
// (Mamba-2 branches) and jamba (Mamba-1 branches), a llama with mixed per-tensor ggml types, and an
// EF-quantized model mapped to the nearest ggml types. Each export is saved as GGUF; llama.cpp
// (node-llama-cpp, tests/reference/llama_eval.mjs, F32 KV cache) loads it and its per-position
// logits must agree with our Session on the same file within 1e-4, with identical greedy
// continuations. At F32 the hard-gated export must compute what the hard-routed edgefusion model
// computes (within float rounding). Bad inputs are refused with a message saying why.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/ef_tensors.h"
#include "core/formats/format.h"
#include "core/synth.h"
#include "quant/ef_quantize.h"
#include "quant/export_llamacpp.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "tests/support/test_support.h"

using namespace ef;

namespace {

const std::vector<int32_t> kPrompt = {1, 300, 42, 77, 260, 511, 5, 123};
constexpr int kGreedy = 6;
constexpr double kTol = 1e-4;

struct Logits {
    std::vector<std::vector<float>> per_pos;  // logits after each prompt token
    std::vector<int32_t> greedy;
    QString error;
};

// llama.cpp on `gguf`: logits at every prompt position and its greedy continuation.
Logits llamacpp(const QString& gguf) {
    Logits out;
    QStringList ids;
    for (int32_t t : kPrompt) ids << QString::number(t);
    const auto r = test::run_node_script(
        "llama_eval.mjs", {"--model", gguf, "--tokens", ids.join(','), "--logits", "--greedy", QString::number(kGreedy)}, 180000);
    if (r.exit_code != 0) {
        out.error = QStringLiteral("llama.cpp did not run %1 (exit %2):\n%3").arg(gguf).arg(r.exit_code).arg(r.err.right(3000));
        return out;
    }
    const auto doc = QJsonDocument::fromJson(r.out.toUtf8());
    if (!doc.isObject()) {
        out.error = "no JSON from llama_eval.mjs: " + r.out.left(400);
        return out;
    }
    for (const QJsonValue& row : doc.object().value("logits").toArray()) {
        std::vector<float> v;
        for (const QJsonValue& x : row.toArray()) v.push_back(float(x.toDouble(NAN)));
        out.per_pos.push_back(std::move(v));
    }
    for (const QJsonValue& g : doc.object().value("greedy").toArray()) out.greedy.push_back(int32_t(g.toInt(-1)));
    return out;
}

// Our Session (hard routing), one eval per token, then greedy.
Logits ours(const Model& m) {
    Logits out;
    auto s = Session::create(m, SessionOptions{});
    if (!s) {
        out.error = QString::fromStdString(s.message());
        return out;
    }
    for (int32_t t : kPrompt) {
        auto l = s->eval(t);
        if (!l) {
            out.error = QString::fromStdString(l.message());
            return out;
        }
        out.per_pos.push_back(std::move(l.value()));
    }
    std::vector<float> last = out.per_pos.back();
    for (int i = 0; i < kGreedy; ++i) {
        out.greedy.push_back(argmax(last));
        if (i + 1 == kGreedy) break;
        auto l = s->eval(out.greedy.back());
        if (!l) {
            out.error = QString::fromStdString(l.message());
            return out;
        }
        last = std::move(l.value());
    }
    return out;
}

// Largest |a - b| over all positions; infinity on a size mismatch or a NaN.
double max_diff(const Logits& a, const Logits& b) {
    if (a.per_pos.size() != b.per_pos.size()) return INFINITY;
    double m = 0.0;
    for (size_t p = 0; p < a.per_pos.size(); ++p) {
        if (a.per_pos[p].size() != b.per_pos[p].size()) return INFINITY;
        for (size_t i = 0; i < a.per_pos[p].size(); ++i) {
            const double d = std::fabs(double(a.per_pos[p][i]) - double(b.per_pos[p][i]));
            if (std::isnan(d)) return INFINITY;
            m = std::max(m, d);
        }
    }
    return m;
}

QString ids(const std::vector<int32_t>& v) {
    QStringList s;
    for (int32_t t : v) s << QString::number(t);
    return s.join(',');
}

void set_gate(Model& m, int layer, float alpha) {
    const std::string name = "blk." + std::to_string(layer) + ".router_gate";
    auto t = Tensor::from_f32(name, {1}, std::vector<float>{alpha});
    QVERIFY(t.ok());
    *m.find(name) = std::move(t.value());
}

// Synth edgefusion, `layers` layers; gates alternate attention (even) / SSM (odd).
Result<Model> routed_model(int ssm_version, int64_t dim, int layers, uint64_t seed) {
    SynthOptions o;
    o.arch = "edgefusion";
    o.dim = dim;
    o.n_layers = layers;
    o.vocab = 512;
    o.seed = seed;
    o.context_length = 256;
    o.ssm_version = ssm_version;
    auto m = synth_model(o);
    if (!m) return m;
    if (ssm_version == 1) m->config.attn.rope_dim = 0;  // Jamba's attention is NoPE
    for (int i = 0; i < layers; ++i) set_gate(*m, i, i % 2 == 0 ? 2.5f : -1.5f);
    return m;
}

Result<Model> llama_model(uint64_t seed) {
    SynthOptions o;
    o.arch = "llama";
    o.dim = 256;
    o.n_layers = 2;
    o.ffn_hidden = 512;
    o.vocab = 512;
    o.seed = seed;
    o.context_length = 256;
    return synth_model(o);
}

DType T(const char* name) { return *dtype_from_name(name); }

}  // namespace

class TestExportLlamacpp : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        QString err;
        if (test::reference_modules(&err).isEmpty()) QFAIL(qPrintable(err));
    }

    // The documented table (quant/export_llamacpp.h), written out by hand.
    void nearest_type_table_data() {
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("block");
        QTest::addColumn<bool>("affine");
        QTest::addColumn<int>("row");
        QTest::addColumn<QString>("expected");
        QTest::newRow("ef2_b128") << 2 << 128 << false << 512 << "q2_K";
        QTest::newRow("ef2_b64 row 64") << 2 << 64 << false << 64 << "q4_0";
        QTest::newRow("ef3_b128") << 3 << 128 << false << 256 << "q3_K";
        QTest::newRow("ef3_b32 row 96") << 3 << 32 << false << 96 << "q4_0";
        QTest::newRow("ef4_b32") << 4 << 32 << false << 256 << "q4_K";
        QTest::newRow("ef4_b64") << 4 << 64 << false << 256 << "q4_K";
        QTest::newRow("ef4a_b32") << 4 << 32 << true << 256 << "q4_1";
        QTest::newRow("ef4a_b64") << 4 << 64 << true << 256 << "q4_K";
        QTest::newRow("ef4_b64 row 192") << 4 << 64 << false << 192 << "q4_0";
        QTest::newRow("ef4a_b32 row 96") << 4 << 32 << true << 96 << "q4_1";
        QTest::newRow("ef5_b32") << 5 << 32 << false << 256 << "q5_K";
        QTest::newRow("ef5a_b32") << 5 << 32 << true << 256 << "q5_1";
        QTest::newRow("ef5_b128 row 128") << 5 << 128 << false << 128 << "q5_0";
        QTest::newRow("ef6_b256") << 6 << 256 << false << 256 << "q6_K";
        QTest::newRow("ef6_b64 row 64") << 6 << 64 << false << 64 << "q8_0";
        QTest::newRow("ef8_b32") << 8 << 32 << false << 96 << "q8_0";
        QTest::newRow("ef8a_b256") << 8 << 256 << true << 256 << "q8_0";
    }
    void nearest_type_table() {
        QFETCH(int, bits);
        QFETCH(int, block);
        QFETCH(bool, affine);
        QFETCH(int, row);
        QFETCH(QString, expected);
        QCOMPARE(QString::fromUtf8(dtype_name(nearest_ggml_type(EfLayout{bits, block, affine}, row)).data()), expected);
    }

    void row_fallbacks() {
        QCOMPARE(ggml_type_for_row(T("q4_K"), 256), T("q4_K"));
        QCOMPARE(ggml_type_for_row(T("q4_K"), 96), T("q4_0"));
        QCOMPARE(ggml_type_for_row(T("q3_K"), 64), T("q4_0"));
        QCOMPARE(ggml_type_for_row(T("q5_K"), 64), T("q5_0"));
        QCOMPARE(ggml_type_for_row(T("q6_K"), 64), T("q8_0"));
        QCOMPARE(ggml_type_for_row(T("q8_0"), 4), DType::F16);
        QCOMPARE(ggml_type_for_row(T("q4_K"), 4), DType::F16);
        QCOMPARE(ggml_type_for_row(DType::F32, 3), DType::F32);
    }

    void runs_in_llamacpp_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QString>("arch");  // expected architecture of the export
        QTest::newRow("edgefusion mamba2 f32 -> granitehybrid") << "ef2" << "granitehybrid";
        QTest::newRow("edgefusion mamba1 f32 -> jamba") << "ef1" << "jamba";
        QTest::newRow("edgefusion mamba2 q8_0 -> granitehybrid") << "ef2 q8_0" << "granitehybrid";
        QTest::newRow("edgefusion mamba1 q8_0 -> jamba") << "ef1 q8_0" << "jamba";
        QTest::newRow("edgefusion all attention -> llama") << "ef2 all-attn" << "llama";
        QTest::newRow("llama mixed q8_0 q4_K q6_K q4_0") << "mixed q8_0 q4_K q6_K q4_0" << "llama";
        QTest::newRow("llama mixed q2_K q3_K q5_K q5_0") << "mixed q2_K q3_K q5_K q5_0" << "llama";
        QTest::newRow("llama mixed q4_1 q5_1") << "mixed q4_1 q5_1" << "llama";
        QTest::newRow("ef4 b64 outliers -> q4_K") << "ef4" << "llama";
        QTest::newRow("ef4a b32 -> q4_1") << "ef4a" << "llama";
    }
    void runs_in_llamacpp() {
        QFETCH(QString, kind);
        QFETCH(QString, arch);
        Model src;
        LlamacppExportOptions eo;
        std::map<std::string, std::string> expect_types;  // tensor -> ggml type the export must have
        if (kind.startsWith("ef1") || kind.startsWith("ef2")) {
            const int version = kind.startsWith("ef1") ? 1 : 2;
            auto m = routed_model(version, kind.endsWith("q8_0") ? 128 : 64, 4, 17 + uint64_t(version));
            QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
            src = std::move(m.value());
            if (kind.endsWith("q8_0")) eo.default_type = DType::Q8_0;
            if (kind.endsWith("all-attn") || kind.endsWith("all-ssm"))
                for (int i = 0; i < 4; ++i) set_gate(src, i, kind.endsWith("all-attn") ? 1.0f : -1.0f);
        } else {
            auto m = llama_model(23);
            QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
            src = std::move(m.value());
            if (kind.startsWith("mixed ")) {  // the listed types in turn over the layers' matrices
                const QStringList types = kind.mid(6).split(' ');
                int i = 0;
                for (const char* w : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
                    for (int l = 0; l < 2; ++l) {
                        const std::string name = "blk." + std::to_string(l) + "." + w + ".weight";
                        const std::string type = types[i++ % types.size()].toStdString();
                        eo.tensor_types[name] = T(type.c_str());
                        expect_types[name] = type;
                    }
                eo.tensor_types["output.weight"] = T(types.back().toUtf8().constData());
                expect_types["output.weight"] = types.back().toStdString();
                expect_types["token_embd.weight"] = "f32";
            } else {
                EfModelQuantOptions q;
                q.tensor.bits = 4;
                q.tensor.block = kind == "ef4" ? 64 : 32;
                q.tensor.affine = kind == "ef4a";
                q.tensor.outlier_fraction = kind == "ef4" ? 0.01 : 0.0;
                q.tensor.threads = 2;
                auto e = ef_quantize_model(src, q);
                QVERIFY2(e.ok(), e.ok() ? "" : e.message().c_str());
                src = std::move(e.value());
                QVERIFY(src.find("blk.0.attn_q.weight") && is_ef_dtype(src.find("blk.0.attn_q.weight")->dtype));
                if (kind == "ef4") QVERIFY(src.find("blk.0.attn_q.weight.outlier_rowptr"));
                for (const char* w : {"attn_q", "ffn_down", "ffn_up"})
                    expect_types[std::string("blk.1.") + w + ".weight"] = kind == "ef4" ? "q4_K" : "q4_1";
            }
        }
        auto ex = export_for_llamacpp(src, eo);
        QVERIFY2(ex.ok(), ex.ok() ? "" : ex.message().c_str());
        QCOMPARE(QString::fromStdString(ex->architecture), arch);
        for (const Tensor& t : ex->tensors) {
            QVERIFY2(is_llamacpp_weight_type(t.dtype), t.name.c_str());
            QVERIFY2(t.name.find("outlier") == std::string::npos && t.name.find("router_gate") == std::string::npos, t.name.c_str());
        }
        for (const auto& [name, type] : expect_types) {
            const Tensor* t = ex->find(name);
            QVERIFY2(t, name.c_str());
            QCOMPARE(QString::fromUtf8(dtype_name(t->dtype).data()), QString::fromStdString(type));
        }
        if (arch != "llama") {  // the layer plan follows the gates: even layers attention (or all / none)
            for (size_t i = 0; i < ex->layers.size(); ++i)
                QCOMPARE(ex->layers[i].mixer == MixerKind::Attention,
                         kind.endsWith("all-attn") || (!kind.endsWith("all-ssm") && i % 2 == 0));
        }

        const QString path = dir_.filePath(QString(QTest::currentDataTag()).replace(' ', '_').replace('>', '_') + ".gguf");
        Status st = save_model(*ex, path.toStdString());
        QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
        auto file = load_model(path.toStdString());
        QVERIFY2(file.ok(), file.ok() ? "" : file.message().c_str());
        QCOMPARE(QString::fromStdString(file->architecture), arch);

        const Logits a = ours(*file);
        QVERIFY2(a.error.isEmpty(), qPrintable(a.error));
        const Logits ref = llamacpp(path);
        QVERIFY2(ref.error.isEmpty(), qPrintable(ref.error));
        const double d = max_diff(a, ref);
        qInfo("%s: max |logit diff| ours vs llama.cpp = %.3g", QTest::currentDataTag(), d);
        QVERIFY2(d <= kTol, qPrintable(QStringLiteral("logits differ from llama.cpp's by %1").arg(d)));
        QCOMPARE(ids(a.greedy), ids(ref.greedy));

        // F32 hard-gated export == the edgefusion model under hard routing.
        if (kind.startsWith("ef1") || kind.startsWith("ef2")) {
            if (kind.endsWith("q8_0")) return;
            const Logits orig = ours(src);
            QVERIFY2(orig.error.isEmpty(), qPrintable(orig.error));
            const double e = max_diff(orig, a);
            qInfo("%s: max |logit diff| export vs hard-routed original = %.3g", QTest::currentDataTag(), e);
            QVERIFY2(e <= 1e-5, qPrintable(QStringLiteral("the export changed the logits by %1").arg(e)));
            QCOMPARE(ids(orig.greedy), ids(a.greedy));
            // The comparison can fail: flipping one gate changes the logits.
            Model flipped = src;
            set_gate(flipped, 1, kind.endsWith("all-attn") ? -2.5f : 2.5f);
            const Logits f = ours(flipped);
            QVERIFY(f.error.isEmpty());
            QVERIFY(max_diff(f, a) > 1e-3);
        }
    }

    // EF blocks are re-quantized from dequant(blocks) + S: the exported q8_0 matrix is close to
    // the corrected weights and visibly farther from the blocks without their outliers.
    void ef_outliers_are_folded_in() {
        auto m = llama_model(31);
        QVERIFY(m.ok());
        EfModelQuantOptions q;
        q.tensor.bits = 3;
        q.tensor.block = 64;
        q.tensor.outlier_fraction = 0.02;
        q.tensor.threads = 2;
        auto e = ef_quantize_model(*m, q);
        QVERIFY2(e.ok(), e.ok() ? "" : e.message().c_str());
        const std::string name = "blk.0.ffn_up.weight";
        const Tensor* w = e->find(name);
        QVERIFY(w && is_ef_dtype(w->dtype));
        auto blocks_only = w->to_f32();
        QVERIFY(blocks_only.ok());
        auto view = ef_outlier_view(name, w->rows(), w->row_length(), ef_find_companions(*e, name));
        QVERIFY2(view.ok() && view->nnz > 0, view.ok() ? "no outliers" : view.message().c_str());
        std::vector<float> with_s = *blocks_only;
        sparse_outliers_add_dense(with_s.data(), *view);
        LlamacppExportOptions eo;
        eo.default_type = DType::Q8_0;
        auto ex = export_for_llamacpp(*e, eo);
        QVERIFY2(ex.ok(), ex.ok() ? "" : ex.message().c_str());
        QCOMPARE(ex->find(name)->dtype, DType::Q8_0);
        QVERIFY(!ex->find(name + ".outlier_rowptr"));
        auto exported = ex->find(name)->to_f32();
        QVERIFY(exported.ok());
        double err_s = 0, err_blocks = 0;
        for (size_t i = 0; i < exported->size(); ++i) {
            err_s = std::max(err_s, double(std::fabs((*exported)[i] - with_s[i])));
            err_blocks = std::max(err_blocks, double(std::fabs((*exported)[i] - (*blocks_only)[i])));
        }
        qInfo("max |q8_0 - (blocks + S)| = %.3g, max |q8_0 - blocks| = %.3g", err_s, err_blocks);
        QVERIFY(err_s * 4 < err_blocks);
    }

    // Importance weights reach the quantizer: q4_K bytes change with them, and the weighted error
    // (the quantity the weights ask to minimise) does not get worse.
    void importance_is_used() {
        auto m = llama_model(37);
        QVERIFY(m.ok());
        const std::string name = "blk.0.attn_q.weight";
        const int64_t cols = m->find(name)->row_length();
        std::vector<float> imp(size_t(cols), 0.01f);
        for (int64_t c = 0; c < cols; c += 7) imp[size_t(c)] = 50.0f;  // a few columns matter a lot
        LlamacppExportOptions plain, weighted;
        plain.default_type = weighted.default_type = DType::Q4_K;
        weighted.importance = [&](const std::string& n) -> const std::vector<float>* { return n == name ? &imp : nullptr; };
        auto a = export_for_llamacpp(*m, plain), b = export_for_llamacpp(*m, weighted);
        QVERIFY(a.ok() && b.ok());
        const Tensor *ta = a->find(name), *tb = b->find(name);
        QVERIFY(ta->nbytes() == tb->nbytes());
        QVERIFY(std::memcmp(ta->data.data(), tb->data.data(), ta->nbytes()) != 0);
        QVERIFY(std::memcmp(a->find("blk.0.attn_k.weight")->data.data(), b->find("blk.0.attn_k.weight")->data.data(),
                            a->find("blk.0.attn_k.weight")->nbytes()) == 0);
        auto w = m->find(name)->to_f32(), qa = ta->to_f32(), qb = tb->to_f32();
        double ea = 0, eb = 0;
        for (size_t i = 0; i < w->size(); ++i) {
            const double k = imp[i % size_t(cols)];
            ea += k * std::pow((*qa)[i] - (*w)[i], 2);
            eb += k * std::pow((*qb)[i] - (*w)[i], 2);
        }
        qInfo("importance-weighted squared error: plain %.4g, weighted %.4g", ea, eb);
        QVERIFY(eb < ea);
        std::vector<float> short_imp(3, 1.0f);
        weighted.importance = [&](const std::string&) -> const std::vector<float>* { return &short_imp; };
        auto bad = export_for_llamacpp(*m, weighted);
        QVERIFY(!bad.ok());
        QVERIFY2(QString::fromStdString(bad.message()).contains("importance"), bad.message().c_str());
    }

    void bad_input_data() {
        QTest::addColumn<QString>("what");
        QTest::addColumn<QString>("message");  // part of the expected error
        QTest::newRow("soft routing") << "soft" << "soft routing";
        QTest::newRow("mixed mamba1/mamba2 branches") << "mixed" << "mamba";
        QTest::newRow("jamba with RoPE attention") << "rope" << "RoPE";
        QTest::newRow("granitehybrid partial RoPE") << "partial" << "partial RoPE";
        QTest::newRow("d_inner != 2 dim") << "dinner" << "d_inner";
        QTest::newRow("unknown tensor name") << "name" << "does not have";
        QTest::newRow("EF type as target") << "eftype" << "not a ggml type";
        QTest::newRow("q8_K as target") << "q8k" << "not a ggml type";
        QTest::newRow("quantized norm") << "norm" << "not a quantizable";
        QTest::newRow("jamba ssm_x quantized") << "ssmx" << "must stay F32";
        QTest::newRow("all gates ssm (llama.cpp: empty KV cache)") << "allssm" << "at least one attention";
        QTest::newRow("all gates attention, NoPE") << "allnope" << "no RoPE";
    }
    void bad_input() {
        QFETCH(QString, what);
        QFETCH(QString, message);
        auto m = routed_model(what == "ssmx" ? 1 : 2, 64, 2, 3);
        QVERIFY(m.ok());
        Model model = std::move(m.value());
        LlamacppExportOptions eo;
        if (what == "soft") eo.soft_routing = true;
        if (what == "mixed") model.layers[1].ssm_branch = MixerKind::Mamba1;
        if (what == "rope") {
            auto r = routed_model(1, 64, 2, 3);
            QVERIFY(r.ok());
            model = std::move(r.value());
            model.config.attn.rope_dim = model.config.attn.head_dim;
        }
        if (what == "partial") model.config.attn.rope_dim = model.config.attn.head_dim / 2;
        if (what == "dinner") {
            SynthOptions o;
            o.arch = "edgefusion";
            o.d_inner = 192;
            auto d = synth_model(o);
            QVERIFY2(d.ok(), d.ok() ? "" : d.message().c_str());
            model = std::move(d.value());
        }
        if (what == "name") eo.tensor_types["blk.9.attn_q.weight"] = DType::Q8_0;
        if (what == "eftype") eo.default_type = ef_dtype(3, 128, false);
        if (what == "q8k") eo.default_type = DType::Q8_K;
        if (what == "norm") eo.tensor_types["blk.0.attn_norm.weight"] = DType::Q8_0;
        if (what == "ssmx") eo.tensor_types["blk.1.ssm_x.weight"] = DType::Q8_0;
        if (what == "allssm") set_gate(model, 0, -1.0f);  // layer 1 is already SSM
        if (what == "allnope") {
            set_gate(model, 1, 1.0f);
            model.config.attn.rope_dim = 0;
        }
        auto ex = export_for_llamacpp(model, eo);
        QVERIFY2(!ex.ok(), "the export should have been refused");
        qInfo("%s", ex.message().c_str());
        QVERIFY2(QString::fromStdString(ex.message()).contains(message), ex.message().c_str());
    }
};

QTEST_GUILESS_MAIN(TestExportLlamacpp)
#include "test_export_llamacpp.moc"
