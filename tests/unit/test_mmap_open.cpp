// Opening a checkpoint maps it: a large GGUF opens without reading its tensor bytes, costs no
// resident memory until a tensor is read, and the tensors point into the mapping.
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>
#include <fstream>

#include "core/formats/format.h"
#include "core/storage.h"
#include "tests/support/test_support.h"

namespace {

// Resident set size of this process in bytes (Linux /proc).
int64_t rss_bytes() {
    std::ifstream in("/proc/self/statm");
    int64_t pages = 0, resident = 0;
    in >> pages >> resident;
    return resident * 4096;
}

// A llama-shaped model whose tensors total about `mib` MiB of F32.
ef::Model big_llama(int64_t dim, int64_t layers, int64_t vocab) {
    ef::Model m;
    m.architecture = "llama";
    auto& c = m.config;
    c.vocab_size = vocab;
    c.dim = dim;
    c.n_layers = layers;
    c.context_length = 256;
    c.ffn_hidden = dim * 2;
    c.attn.n_heads = dim / 64;
    c.attn.n_kv_heads = dim / 64;
    c.attn.head_dim = 64;
    c.attn.rope_dim = 64;
    m.layers.assign(size_t(layers), ef::LayerDesc{ef::MixerKind::Attention, ef::MixerKind::Mamba2, ef::FfnKind::SwiGLU});
    auto add = [&](const std::string& name, ef::Shape shape) {
        const int64_t n = *ef::shape_numel(shape);
        std::vector<std::byte> bytes(size_t(n) * 4, std::byte{0x3c});
        auto t = ef::Tensor::from_bytes(name, ef::DType::F32, std::move(shape), std::move(bytes));
        QVERIFY(t.ok());
        m.add(std::move(*t));
    };
    add("token_embd.weight", {vocab, dim});
    add("output_norm.weight", {dim});
    add("output.weight", {vocab, dim});
    for (int64_t l = 0; l < layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm.weight", {dim});
        for (const char* w : {"attn_q", "attn_k", "attn_v", "attn_output"}) add(p + w + ".weight", {dim, dim});
        add(p + "ffn_norm.weight", {dim});
        add(p + "ffn_gate.weight", {2 * dim, dim});
        add(p + "ffn_up.weight", {2 * dim, dim});
        add(p + "ffn_down.weight", {dim, 2 * dim});
    }
    m.vocab.model = "llama";
    for (int64_t i = 0; i < vocab; ++i) {
        m.vocab.tokens.push_back("t" + std::to_string(i));
        m.vocab.scores.push_back(0.0f);
        m.vocab.token_types.push_back(1);
    }
    return m;
}

}  // namespace

class TestMmapOpen : public QObject {
    Q_OBJECT
private slots:
    void open_maps_without_reading() {
        QTemporaryDir dir;
        const std::string path = dir.filePath("big.gguf").toStdString();
        {
            // ~290 MiB: dim 1024, 8 layers, vocab 8192.
            auto m = big_llama(1024, 8, 8192);
            auto st = ef::save_model(m, path);
            QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
        }
        const auto file_bytes = int64_t(QFileInfo(QString::fromStdString(path)).size());
        QVERIFY(file_bytes > 250ll << 20);

        const int64_t before = rss_bytes();
        QElapsedTimer timer;
        timer.start();
        auto loaded = ef::load_model(path);
        const qint64 ms = timer.elapsed();
        QVERIFY2(loaded.ok(), loaded.ok() ? "" : loaded.message().c_str());
        const int64_t grown = rss_bytes() - before;
        qInfo("opened %lld MiB in %lld ms; resident memory grew by %lld KiB", static_cast<long long>(file_bytes >> 20),
              static_cast<long long>(ms), static_cast<long long>(grown >> 10));
        // Nothing close to the file's size may become resident just by opening it.
        QVERIFY2(grown < file_bytes / 16, qPrintable(QString("RSS grew by %1 bytes").arg(grown)));

        // Tensors are views into one mapping of the file.
        const auto* t = loaded->find("blk.3.ffn_up.weight");
        QVERIFY(t);
        QVERIFY(dynamic_cast<const ef::MappedFile*>(t->owner.get()) != nullptr);
        const auto span = t->owner->bytes();
        QVERIFY(t->data.data() >= span.data() && t->data.data() + t->data.size() <= span.data() + span.size());

        // Reading one tensor makes (about) that tensor resident, not the file.
        const int64_t before_read = rss_bytes();
        auto values = t->to_f32();
        QVERIFY(values.ok());
        const int64_t read_growth = rss_bytes() - before_read;
        QVERIFY(read_growth < file_bytes / 4);

        // Touching every tensor makes the file resident; release() drops it again (what streaming
        // quantization does after each tensor), and the bytes read back the same afterwards.
        double sum_before = 0;
        for (const auto& tensor : loaded->tensors)
            for (std::byte b : tensor.data) sum_before += double(std::to_integer<int>(b));
        const int64_t touched = rss_bytes();
        for (const auto& tensor : loaded->tensors) tensor.owner->release(tensor.data);
        const int64_t released = rss_bytes();
        qInfo("all tensors touched: RSS %lld MiB; after release: %lld MiB", static_cast<long long>(touched >> 20),
              static_cast<long long>(released >> 20));
        QVERIFY2(touched - released > file_bytes * 3 / 4, qPrintable(QString("released only %1 bytes").arg(touched - released)));
        double sum_after = 0;
        for (const auto& tensor : loaded->tensors)
            for (std::byte b : tensor.data) sum_after += double(std::to_integer<int>(b));
        QCOMPARE(sum_after, sum_before);
    }
};

QTEST_GUILESS_MAIN(TestMmapOpen)
#include "test_mmap_open.moc"
