// HDF5 checkpoint: exact round trips, the zstd filter on every dataset, independent readers (h5py
// through tests/reference/read_hdf5.py and h5dump, both loading our libh5zstd.so plugin), progress
// and cancellation with atomic saves.
#include <hdf5.h>

#include <QDir>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/hdf5/zstd_filter.h"
#include "quant/half.h"
#include "tests/support/test_support.h"
#include "tests/unit/hdf5_test_models.h"

using namespace ef;
using ef::test::hdf5_model_difference;

namespace {

// Every plain and packed dtype plus odd shapes (rank 0, rank 1, rank 3, empty); not an
// architecture's tensor list, so it loads with validation off.
Model all_dtypes_model() {
    std::string err;
    Model m;
    m.architecture = "llama";
    m.config.vocab_size = 4;
    m.config.dim = 8;
    m.config.n_layers = 1;
    m.layers = {LayerDesc{}};
    m.metadata = ef::test::hdf5_test_metadata("odd");
    uint64_t state = 7;
    auto add = [&](const std::string& name, DType t, Shape shape) {
        std::vector<float> v(size_t(shape_numel(shape).value_or(0)));
        for (auto& x : v) x = 3.0f * ef::test::hdf5_test_random(state);
        auto tensor = Tensor::from_f32(name, shape, v, t);
        if (!tensor) qFatal("%s", tensor.message().c_str());
        m.add(std::move(*tensor));
    };
    add("f32.scalar", DType::F32, {});
    add("f32.vector", DType::F32, {13});
    add("f32.cube", DType::F32, {3, 5, 7});
    add("f32.empty", DType::F32, {0, 4});
    add("f16.matrix", DType::F16, {9, 33});
    add("bf16.matrix", DType::BF16, {5, 6});
    std::vector<std::byte> f64(5 * 8);
    for (size_t i = 0; i < 5; ++i) {
        const double x = 1.0 / double(i + 3);
        std::memcpy(f64.data() + 8 * i, &x, 8);
    }
    m.add(*Tensor::from_bytes("f64.vector", DType::F64, {5}, f64));
    for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0})
        add(std::string(dtype_name(t)) + ".matrix", t, {3, 64});
    for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
        add(std::string(dtype_name(t)) + ".matrix", t, {2, 256});
    std::vector<std::byte> ints(4 * 6);
    for (size_t i = 0; i < ints.size(); ++i) ints[i] = std::byte(i * 37);
    m.add(*Tensor::from_bytes("i32.matrix", DType::I32, {2, 3}, ints));
    m.add(*Tensor::from_bytes("i8.vector", DType::I8, {24}, ints));
    return m;
}

// A model big enough that a save reports progress many times (several slabs per tensor).
Model big_model() {
    Model m = all_dtypes_model();
    m.tensors.clear();
    uint64_t state = 11;
    for (int i = 0; i < 4; ++i) {
        std::vector<float> v(size_t(1) << 23);  // 32 MiB of f32: one 64 MiB slab each is too coarse
        for (auto& x : v) x = ef::test::hdf5_test_random(state);
        m.add(*Tensor::from_f32("big." + std::to_string(i), {int64_t(1) << 13, int64_t(1) << 10}, v));
    }
    return m;
}

LoadOptions no_validation() {
    LoadOptions o;
    o.validate = false;
    return o;
}

std::vector<std::string> datasets_under(hid_t file, const char* group) {
    std::vector<std::string> names;
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0) return names;
    H5Literate(
        g, H5_INDEX_NAME, H5_ITER_INC, nullptr,
        [](hid_t, const char* name, const H5L_info_t*, void* d) -> herr_t {
            static_cast<std::vector<std::string>*>(d)->emplace_back(name);
            return 0;
        },
        &names);
    H5Gclose(g);
    return names;
}

}  // namespace

class TestHdf5 : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString file(const QString& name) const { return dir_.filePath(name); }

    // Saves `m` to `name` and returns the path, failing the test on error.
    std::string save(const Model& m, const QString& name, int level = 3) {
        SaveOptions o;
        o.compression_level = level;
        const std::string path = file(name).toStdString();
        Status s = hdf5_format_handler().save(m, path, o, Progress::none());
        if (!s) qWarning("%s", s.message().c_str());
        return s ? path : std::string();
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        register_hdf5_format();
        QVERIFY(register_zstd_filter().ok());
        QVERIFY(register_zstd_filter().ok());  // idempotent
        QVERIFY(H5Zfilter_avail(kZstdFilterId) > 0);
    }

    void roundTrip_data() {
        QTest::addColumn<QString>("arch");
        for (const ArchitectureInfo* a : architectures()) QTest::newRow(std::string(a->name).c_str()) << QString::fromUtf8(a->name);
    }
    void roundTrip() {
        QFETCH(QString, arch);
        std::string err;
        const Model m = ef::test::hdf5_test_model(arch.toStdString(), &err);
        QVERIFY2(err.empty(), err.c_str());
        const std::string path = save(m, arch + ".h5");
        QVERIFY(!path.empty());
        auto back = load_model(path);  // by magic bytes, with architecture validation
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QCOMPARE(QString::fromStdString(hdf5_model_difference(m, *back)), QString());
        QCOMPARE(back->source_format, std::string("hdf5"));
        QCOMPARE(back->source_path, path);
    }

    void roundTripAllDtypes_data() {
        QTest::addColumn<int>("level");
        QTest::newRow("fast -5") << -5;
        QTest::newRow("level 1") << 1;
        QTest::newRow("default 3") << 3;
        QTest::newRow("level 19") << 19;
    }
    void roundTripAllDtypes() {
        QFETCH(int, level);
        const Model m = all_dtypes_model();
        const std::string path = save(m, QString("all%1.h5").arg(level), level);
        QVERIFY(!path.empty());
        auto back = hdf5_format_handler().load(path, no_validation(), Progress::none());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QCOMPARE(QString::fromStdString(hdf5_model_difference(m, *back)), QString());
    }

    void registryAndExtensions() {
        QVERIFY(find_format("hdf5") != nullptr);
        QCOMPARE(format_for_extension("/x/model.H5"), find_format("hdf5"));
        QCOMPARE(format_for_extension("/x/model.hdf5"), find_format("hdf5"));
        std::string err;
        const Model m = ef::test::hdf5_test_model("llama", &err);
        QVERIFY2(err.empty(), err.c_str());
        const std::string path = file("via_registry.hdf5").toStdString();
        QVERIFY(save_model(m, path).ok());
        // Probed by content, whatever the name.
        const std::string renamed = file("renamed.bin").toStdString();
        QVERIFY(QFile::rename(QString::fromStdString(path), QString::fromStdString(renamed)));
        auto back = load_model(renamed);
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QCOMPARE(back->source_format, std::string("hdf5"));
        SaveOptions bad;
        bad.compression_level = 99;
        auto s = save_model(m, file("bad_level.h5").toStdString(), bad);
        QVERIFY(!s.ok());
        QVERIFY2(s.message().find("compression level") != std::string::npos, s.message().c_str());
        QVERIFY(!QFile::exists(file("bad_level.h5")));
    }

    // Every dataset (tensors and vocab) is chunked and carries filter 32015 with our level.
    void usesZstdFilter() {
        const Model m = all_dtypes_model();
        Model mv = m;
        mv.vocab = ef::test::hdf5_test_vocab(40);
        const std::string path = save(mv, "filters.h5", 7);
        QVERIFY(!path.empty());
        hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
        QVERIFY(f >= 0);
        int checked = 0;
        for (const char* group : {"/tensors", "/vocab"}) {
            for (const std::string& name : datasets_under(f, group)) {
                const std::string full = std::string(group) + "/" + name;
                hid_t d = H5Dopen2(f, full.c_str(), H5P_DEFAULT);
                QVERIFY2(d >= 0, full.c_str());
                hid_t dcpl = H5Dget_create_plist(d);
                QCOMPARE(H5Pget_layout(dcpl), H5D_CHUNKED);
                QCOMPARE(H5Pget_nfilters(dcpl), 1);
                unsigned flags = 0, cd[4] = {};
                size_t ncd = 4;
                char fname[32] = {};
                const H5Z_filter_t id = H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, sizeof fname, fname, nullptr);
                QCOMPARE(int(id), 32015);
                QVERIFY(ncd >= 1);
                QCOMPARE(int(cd[0]), 7);
                QCOMPARE(ncd, size_t(2));  // level, chunk bytes
                QCOMPARE(QString(fname), QString("zstd"));
                H5Pclose(dcpl);
                H5Dclose(d);
                ++checked;
            }
        }
        H5Fclose(f);
        QCOMPARE(checked, int(m.tensors.size()) + 4);  // + tokens, scores, token_types, merges
    }

    // h5py (with only HDF5_PLUGIN_PATH pointing at our plugin) reads what we wrote: attributes,
    // vocab, creation order, dtypes, shapes, the raw bytes (sha256) and float values exactly.
    void h5pyReads() {
        std::string err;
        Model m = ef::test::hdf5_test_model("llama", &err);
        QVERIFY2(err.empty(), err.c_str());
        for (auto& t : all_dtypes_model().tensors) m.add(t);
        const std::string path = save(m, "h5py.h5", 5);
        QVERIFY(!path.empty());
        const auto r = ef::test::run_process("/usr/bin/python3",
                                             {ef::test::source_path("tests/reference/read_hdf5.py"), QString::fromStdString(path)},
                                             120000, {"HDF5_PLUGIN_PATH=" + ef::test::hdf5_plugin_path()});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString(), nullptr, false);
        QVERIFY2(!j.is_discarded(), qPrintable(r.out.left(500)));

        const auto& attrs = j["attrs"];
        QCOMPARE(attrs["edgefusion_format_version"].get<int>(), 1);
        QCOMPARE(attrs["architecture"].get<std::string>(), m.architecture);
        QCOMPARE(nlohmann::json::parse(attrs["config"].get<std::string>()), config_to_json(m.config));
        QCOMPARE(nlohmann::json::parse(attrs["layers"].get<std::string>()), layers_to_json(m.layers));
        QCOMPARE(nlohmann::json::parse(attrs["metadata"].get<std::string>()), metadata_to_json(m.metadata));

        const auto& v = j["vocab"];
        QCOMPARE(v["tokens"].get<std::vector<std::string>>(), m.vocab.tokens);
        QCOMPARE(v["merges"].get<std::vector<std::string>>(), m.vocab.merges);
        QCOMPARE(v["token_types"].get<std::vector<int32_t>>(), m.vocab.token_types);
        const auto scores = v["scores"].get<std::vector<double>>();
        QCOMPARE(scores.size(), m.vocab.scores.size());
        for (size_t i = 0; i < scores.size(); ++i) QCOMPARE(scores[i], double(m.vocab.scores[i]));
        QCOMPARE(v["attrs"]["model"].get<std::string>(), m.vocab.model);
        QCOMPARE(v["attrs"]["pre"].get<std::string>(), m.vocab.pre);
        QCOMPARE(v["attrs"]["bos_id"].get<int>(), m.vocab.bos_id);
        QCOMPARE(v["attrs"]["pad_id"].get<int>(), m.vocab.pad_id);
        QCOMPARE(v["attrs"]["add_bos"].get<int>(), m.vocab.add_bos ? 1 : 0);

        const auto& ts = j["tensors"];
        QCOMPARE(ts.size(), m.tensors.size());
        int f32_checked = 0, f16_checked = 0;
        for (size_t i = 0; i < m.tensors.size(); ++i) {
            const Tensor& t = m.tensors[i];
            const auto& e = ts[i];
            QCOMPARE(e["name"].get<std::string>(), t.name);  // creation order = model order
            QCOMPARE(e["attrs"]["dtype"].get<std::string>(), std::string(dtype_name(t.dtype)));
            QCOMPARE(e["attrs"]["shape"].get<std::vector<int64_t>>(), t.shape);
            QCOMPARE(e["filters"][0]["id"].get<int>(), 32015);
            QCOMPARE(e["filters"][0]["cd_values"][0].get<int>(), 5);
            QCOMPARE(e["sha256"].get<std::string>(), ef::test::sha256_hex(t.data).toStdString());
            const auto shape = e["shape"].get<std::vector<int64_t>>();
            const std::string np = e["dtype"].get<std::string>();
            if (t.dtype == DType::F32 || t.dtype == DType::F16) {
                QCOMPARE(np, std::string(t.dtype == DType::F32 ? "float32" : "float16"));
                QCOMPARE(shape, t.shape.empty() ? Shape{1} : t.shape);
                const auto values = e["values"].get<std::vector<double>>();
                QCOMPARE(int64_t(values.size()), t.numel());
                for (size_t k = 0; k < values.size(); ++k) {
                    float ours = 0;
                    if (t.dtype == DType::F32) {
                        std::memcpy(&ours, t.data.data() + 4 * k, 4);
                    } else {
                        uint16_t h = 0;
                        std::memcpy(&h, t.data.data() + 2 * k, 2);
                        ours = f16_to_f32(h);
                    }
                    if (values[k] != double(ours))
                        QFAIL(qPrintable(QString("%1[%2]: h5py %3, ours %4")
                                             .arg(QString::fromStdString(t.name)).arg(k).arg(values[k], 0, 'g', 17)
                                             .arg(double(ours), 0, 'g', 17)));
                }
                (t.dtype == DType::F32 ? f32_checked : f16_checked)++;
            } else if (type_traits(t.dtype).quantized || t.dtype == DType::BF16) {
                QCOMPARE(np, std::string("uint8"));
                QCOMPARE(shape, Shape{int64_t(t.data.size())});
            }
        }
        QVERIFY(f32_checked >= 4);
        QVERIFY(f16_checked >= 2);
    }

    // A checkpoint written by h5py (through our plugin's compressor, cd_values = {level} only,
    // variable-length strings, no dtype attribute on plain float arrays) loads.
    void readsFileWrittenByH5py() {
        const QString path = file("from_h5py.h5");
        const char* script = R"PY(
import sys, h5py, numpy as np
path, config = sys.argv[1], sys.argv[2]
with h5py.File(path, "w") as f:
    f.attrs["edgefusion_format_version"] = 1
    f.attrs["architecture"] = "llama"
    f.attrs["config"] = config
    f.attrs["layers"] = "[]"
    f.attrs["metadata"] = "{}"
    v = f.create_group("vocab")
    v.attrs["model"] = "gpt2"
    v.attrs["bos_id"] = np.int32(2)
    v.create_dataset("tokens", data=["a", "b\u00e9", "\u2581c"], dtype=h5py.string_dtype(), chunks=True)
    v.create_dataset("scores", data=np.array([0.5, -1, 2], "f4"), compression=32015, compression_opts=(9,))
    t = f.create_group("tensors")
    t.create_dataset("w", data=np.arange(12, dtype="f4").reshape(3, 4), compression=32015, compression_opts=(1,))
    t.create_dataset("h", data=(np.arange(6, dtype="f2") / 4).reshape(2, 3), compression=32015, compression_opts=(3,))
    q = t.create_dataset("q", data=np.frombuffer(bytes(range(34)), "u1"), compression=32015, compression_opts=(3,))
    q.attrs["dtype"] = "q8_0"
    q.attrs["shape"] = np.array([1, 32], "i8")
)PY";
        ModelConfig cfg;
        cfg.dim = 4;
        const auto r = ef::test::run_process(
            "/usr/bin/python3", {"-c", script, path, QString::fromStdString(config_to_json(cfg).dump())}, 120000,
            {"HDF5_PLUGIN_PATH=" + ef::test::hdf5_plugin_path()});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        auto m = hdf5_format_handler().load(path.toStdString(), no_validation(), Progress::none());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QCOMPARE(m->config, cfg);
        QCOMPARE(m->vocab.model, std::string("gpt2"));
        QCOMPARE(m->vocab.bos_id, 2);
        QCOMPARE(m->vocab.tokens, (std::vector<std::string>{"a", "b\xc3\xa9", "\xe2\x96\x81" "c"}));
        QCOMPARE(m->vocab.scores, (std::vector<float>{0.5f, -1.0f, 2.0f}));
        QCOMPARE(m->tensors.size(), size_t(3));
        const Tensor* w = m->find("w");
        QVERIFY(w && w->dtype == DType::F32 && w->shape == (Shape{3, 4}));
        for (int i = 0; i < 12; ++i) QCOMPARE(reinterpret_cast<const float*>(w->data.data())[i], float(i));
        const Tensor* h = m->find("h");
        QVERIFY(h && h->dtype == DType::F16 && h->shape == (Shape{2, 3}));
        for (int i = 0; i < 6; ++i) QCOMPARE(f16_to_f32(reinterpret_cast<const uint16_t*>(h->data.data())[i]), float(i) / 4);
        const Tensor* q = m->find("q");
        QVERIFY(q && q->dtype == DType::Q8_0 && q->shape == (Shape{1, 32}) && q->data.size() == 34);
        for (int i = 0; i < 34; ++i) QCOMPARE(int(q->data[size_t(i)]), i);
    }

    // h5dump (HDF5's own C tools) reads the file through the plugin, and cannot without it.
    void h5dumpWithPlugin() {
        std::string err;
        const Model m = ef::test::hdf5_test_model("llama", &err);
        QVERIFY2(err.empty(), err.c_str());
        const QString path = QString::fromStdString(save(m, "h5dump.h5"));
        QVERIFY(!path.isEmpty());
        const QStringList env{"HDF5_PLUGIN_PATH=" + ef::test::hdf5_plugin_path()};
        auto header = ef::test::run_process("h5dump", {"-H", "-p", path}, 60000, env);
        QVERIFY2(header.exit_code == 0, qPrintable(header.err));
        QVERIFY(header.out.contains("GROUP \"tensors\""));
        QVERIFY(header.out.contains("DATASET \"blk.0.attn_q.weight\""));
        QVERIFY(header.out.contains("32015"));

        const Tensor* norm = m.find("output_norm.weight");
        QVERIFY(norm && norm->dtype == DType::F32);
        auto data = ef::test::run_process("h5dump", {"-d", "/tensors/output_norm.weight", path}, 60000, env);
        QVERIFY2(data.exit_code == 0, qPrintable(data.err + data.out.left(2000)));
        // Values after "DATA {", without h5dump's "(i):" position markers.
        QString body = data.out.mid(data.out.indexOf("DATA {") + 6);
        body = body.left(body.indexOf('}'));
        body.remove(QRegularExpression("\\(\\d+(,\\d+)*\\):"));
        const QStringList nums = body.split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts);
        const auto ours = norm->to_f32();
        QVERIFY(ours.ok());
        QCOMPARE(nums.size(), qsizetype(ours->size()));
        for (qsizetype i = 0; i < nums.size(); ++i) {
            bool ok = false;
            const double x = nums[i].toDouble(&ok);
            QVERIFY(ok);
            QVERIFY2(std::abs(x - double((*ours)[size_t(i)])) <= 1e-6 * std::max(1.0, std::abs(x)), qPrintable(nums[i]));
        }
        // Without our plugin the data cannot be decoded: the check above really used it.
        auto none = ef::test::run_process("h5dump", {"-d", "/tensors/output_norm.weight", path}, 60000,
                                          {"HDF5_PLUGIN_PATH=" + dir_.path() + "/no-plugins-here"});
        QVERIFY2(none.exit_code > 0, qPrintable(none.out.left(500)));
        QVERIFY(none.err.contains("unable to print data"));
    }

    void progressReported() {
        const Model m = all_dtypes_model();
        std::vector<double> seen;
        Progress p([&](double f, const std::string&) { seen.push_back(f); });
        const std::string path = file("progress.h5").toStdString();
        QVERIFY(hdf5_format_handler().save(m, path, {}, p).ok());
        QVERIFY(seen.size() >= m.tensors.size());
        QVERIFY(std::is_sorted(seen.begin(), seen.end()));
        QCOMPARE(seen.back(), 1.0);
        seen.clear();
        QVERIFY(hdf5_format_handler().load(path, no_validation(), p).ok());
        QVERIFY(seen.size() >= m.tensors.size());
        QVERIFY(std::is_sorted(seen.begin(), seen.end()));
        QCOMPARE(seen.back(), 1.0);
    }

    // Cancelling in the middle of a save leaves nothing under the target name and no temp file.
    void cancelSaveLeavesNoFile() {
        const Model m = big_model();
        QTemporaryDir sub;
        const std::string path = sub.filePath("cancel.h5").toStdString();
        Progress* self = nullptr;
        int reports = 0;
        QStringList during;
        Progress p([&](double f, const std::string&) {
            if (f > 0.0 && ++reports == 3) {
                during = QDir(sub.path()).entryList(QDir::Files | QDir::Hidden);
                self->cancel();
            }
        });
        self = &p;
        Status s = hdf5_format_handler().save(m, path, {}, p);
        // The cancel came mid-write: only the temporary file existed then.
        QCOMPARE(during.size(), qsizetype(1));
        QVERIFY2(during[0].startsWith("cancel.h5.tmp"), qPrintable(during[0]));
        QVERIFY(!s.ok());
        QVERIFY2(s.message().find("cancelled") != std::string::npos, s.message().c_str());
        QVERIFY(!QFile::exists(QString::fromStdString(path)));
        QCOMPARE(QDir(sub.path()).entryList(QDir::Files | QDir::Hidden), QStringList());
    }

    // ... and an existing file of that name is left as it was.
    void cancelSaveKeepsOldFile() {
        const Model small = all_dtypes_model();
        const std::string path = save(small, "keep.h5");
        QVERIFY(!path.empty());
        QFile f(QString::fromStdString(path));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray before = f.readAll();
        f.close();
        Progress p;
        p.cancel();
        QVERIFY(!hdf5_format_handler().save(big_model(), path, {}, p).ok());
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), before);
        QCOMPARE(QDir(dir_.path()).entryList({"keep.h5*"}, QDir::Files), QStringList{"keep.h5"});
    }

    void cancelLoad() {
        const std::string path = save(all_dtypes_model(), "cancel_load.h5");
        QVERIFY(!path.empty());
        Progress* self = nullptr;
        Progress p([&](double f, const std::string&) {
            if (f > 0.2) self->cancel();
        });
        self = &p;
        auto r = hdf5_format_handler().load(path, no_validation(), p);
        QVERIFY(!r.ok());
        QVERIFY2(r.message().find("cancelled") != std::string::npos, r.message().c_str());
    }
};

QTEST_GUILESS_MAIN(TestHdf5)
#include "test_hdf5.moc"
