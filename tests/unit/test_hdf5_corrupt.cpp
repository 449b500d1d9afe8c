// Damaged and foreign HDF5 files: every one must come back as an error naming the file (and the
// object), never a crash or an absurd allocation. Bad files are made from a good checkpoint by
// truncating it or by editing it with the HDF5 C API (attributes, raw chunks via H5Dwrite_chunk).
#include <hdf5.h>
#include <zstd.h>

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <functional>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/hdf5/zstd_filter.h"
#include "tests/support/test_support.h"
#include "tests/unit/hdf5_test_models.h"

using namespace ef;

namespace {

bool contains(const std::string& s, const QString& part) { return s.find(part.toStdString()) != std::string::npos; }

// Replaces (or adds) a scalar attribute.
void set_str_attr(hid_t obj, const char* name, const std::string& value) {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = value.c_str();
    H5Awrite(a, t, &p);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

void set_int_attr(hid_t obj, const char* name, int64_t v) {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

void set_shape_attr(hid_t obj, const std::vector<int64_t>& shape) {
    if (H5Aexists(obj, "shape") > 0) H5Adelete(obj, "shape");
    const hsize_t n = shape.size();
    hid_t sp = H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate2(obj, "shape", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, shape.data());
    H5Aclose(a);
    H5Sclose(sp);
}

// Reads the stored (compressed) bytes of chunk 0 of a 1-D or 2-D dataset.
std::vector<char> read_chunk0(hid_t d) {
    hid_t sp = H5Dget_space(d);
    const int rank = H5Sget_simple_extent_ndims(sp);
    H5Sclose(sp);
    std::vector<hsize_t> off(size_t(rank), 0);
    hsize_t size = 0;
    H5Dget_chunk_storage_size(d, off.data(), &size);
    std::vector<char> buf(static_cast<size_t>(size));
    uint32_t mask = 0;
    if (size == 0 || H5Dread_chunk(d, H5P_DEFAULT, off.data(), &mask, buf.data()) < 0) buf.clear();
    return buf;
}

bool write_chunk0(hid_t d, const std::vector<char>& bytes) {
    hid_t sp = H5Dget_space(d);
    const int rank = H5Sget_simple_extent_ndims(sp);
    H5Sclose(sp);
    std::vector<hsize_t> off(size_t(rank), 0);
    return H5Dwrite_chunk(d, H5P_DEFAULT, 0, off.data(), bytes.size(), bytes.data()) >= 0;
}

}  // namespace

class TestHdf5Corrupt : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    std::string good_;  // a valid checkpoint (llama, Q8_0/F16/BF16/F32 tensors, vocab)
    Model model_;

    std::string copy_of_good(const QString& name) {
        const QString dst = dir_.filePath(name);
        QFile::remove(dst);
        if (!QFile::copy(QString::fromStdString(good_), dst)) return {};
        return dst.toStdString();
    }

    // A copy of the good file edited through the C API.
    std::string edited(const QString& name, const std::function<bool(hid_t)>& edit) {
        const std::string path = copy_of_good(name);
        if (path.empty()) return {};
        hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        if (f < 0) return {};
        const bool ok = edit(f);
        H5Fclose(f);
        return ok ? path : std::string();
    }

    static Result<Model> load(const std::string& path) {
        return hdf5_format_handler().load(path, LoadOptions{}, Progress::none());
    }

    // The load fails with a message naming the file and containing every part.
    static void expect_error(const std::string& path, const QStringList& parts) {
        auto r = load(path);
        QVERIFY2(!r.ok(), ("loaded a bad file: " + path).c_str());
        const std::string& msg = r.message();
        QVERIFY2(msg.rfind(path, 0) == 0, msg.c_str());
        for (const QString& part : parts) QVERIFY2(contains(msg, part), (msg + "\n  expected: " + part.toStdString()).c_str());
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        register_hdf5_format();
        std::string err;
        model_ = ef::test::hdf5_test_model("llama", &err, 64, 96);
        QVERIFY2(err.empty(), err.c_str());
        good_ = dir_.filePath("good.h5").toStdString();
        QVERIFY(hdf5_format_handler().save(model_, good_, {}, Progress::none()).ok());
        auto back = load(good_);
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
    }

    void truncated_data() {
        QTest::addColumn<qint64>("keep");  // bytes kept; negative: file size minus that many
        QTest::newRow("empty") << qint64(0);
        QTest::newRow("signature only") << qint64(8);
        QTest::newRow("100 bytes") << qint64(100);
        QTest::newRow("1 KiB") << qint64(1024);
        QTest::newRow("4 KiB") << qint64(4096);
        QTest::newRow("half") << qint64(-1);
        QTest::newRow("all but 1 byte") << qint64(-2);
        QTest::newRow("all but 100 bytes") << qint64(-3);
    }
    void truncated() {
        QFETCH(qint64, keep);
        QFile in(QString::fromStdString(good_));
        QVERIFY(in.open(QIODevice::ReadOnly));
        const QByteArray all = in.readAll();
        qint64 n = keep;
        if (keep == -1) n = all.size() / 2;
        if (keep == -2) n = all.size() - 1;
        if (keep == -3) n = all.size() - 100;
        const QString path = dir_.filePath(QString("truncated_%1.h5").arg(n));
        QFile out(path);
        QVERIFY(out.open(QIODevice::WriteOnly));
        out.write(all.left(n));
        out.close();
        auto r = load_model(path.toStdString());
        QVERIFY(!r.ok());
        QVERIFY2(contains(r.message(), path), r.message().c_str());
    }

    // Garbage over a region of the file (size unchanged): metadata checksums, B-trees and zstd
    // frames catch most hits; whatever happens, no crash and any error names the file.
    void overwrittenRegion_data() {
        QTest::addColumn<int>("percent");
        QTest::addColumn<bool>("zeros");
        for (int p : {1, 10, 30, 50, 70, 90, 99}) {
            QTest::addRow("garbage at %d%%", p) << p << false;
            QTest::addRow("zeros at %d%%", p) << p << true;
        }
    }
    void overwrittenRegion() {
        QFETCH(int, percent);
        QFETCH(bool, zeros);
        QFile in(QString::fromStdString(good_));
        QVERIFY(in.open(QIODevice::ReadOnly));
        QByteArray all = in.readAll();
        const qsizetype at = all.size() * percent / 100, n = std::min<qsizetype>(2048, all.size() - at);
        for (qsizetype i = 0; i < n; ++i) all[at + i] = zeros ? char(0) : char((i * 197 + percent) & 0xff);
        const QString path = dir_.filePath(QString("overwritten_%1_%2.h5").arg(percent).arg(zeros));
        QFile out(path);
        QVERIFY(out.open(QIODevice::WriteOnly));
        out.write(all);
        out.close();
        auto r = load_model(path.toStdString());
        if (!r.ok()) QVERIFY2(contains(r.message(), path), r.message().c_str());
    }

    void textFileNamedH5() {
        const QString path = dir_.filePath("notes.h5");
        QFile out(path);
        QVERIFY(out.open(QIODevice::WriteOnly));
        out.write("These are not the tensors you are looking for.\n");
        out.close();
        auto r = load_model(path.toStdString());  // no magic matches: the extension picks HDF5
        QVERIFY(!r.ok());
        QVERIFY2(contains(r.message(), path + ": not an HDF5 file"), r.message().c_str());
    }

    void missingFile() {
        expect_error(dir_.filePath("nope.h5").toStdString(), {"no such file"});
        expect_error(dir_.path().toStdString(), {"not a regular file"});
    }

    // A valid HDF5 file from someone else: no EdgeFusion attributes.
    void foreignHdf5() {
        const std::string path = dir_.filePath("foreign.h5").toStdString();
        hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        QVERIFY(f >= 0);
        const hsize_t dims[2] = {4, 5};
        hid_t sp = H5Screate_simple(2, dims, nullptr);
        hid_t d = H5Dcreate2(f, "temperature", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        std::vector<float> v(20, 21.5f);
        QVERIFY(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
        H5Dclose(d);
        H5Sclose(sp);
        H5Fclose(f);
        expect_error(path, {"not an EdgeFusion checkpoint", "edgefusion_format_version"});
    }

    void missingRootAttribute_data() {
        QTest::addColumn<QString>("attr");
        for (const char* a : {"architecture", "config", "layers", "metadata"}) QTest::newRow(a) << QString(a);
    }
    void missingRootAttribute() {
        QFETCH(QString, attr);
        const std::string path = edited("no_" + attr + ".h5", [&](hid_t f) {
            return H5Adelete(f, attr.toUtf8().constData()) >= 0;
        });
        QVERIFY(!path.empty());
        expect_error(path, {"missing attribute '" + attr + "'"});
    }

    void badRootAttribute_data() {
        QTest::addColumn<QString>("attr");
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("expected");
        QTest::newRow("config not JSON") << "config" << "{not json" << "attribute 'config' is not valid JSON";
        QTest::newRow("layers cut short") << "layers" << "[{\"mixer\":" << "attribute 'layers' is not valid JSON";
        QTest::newRow("metadata not JSON") << "metadata" << "\x01\x02" << "attribute 'metadata' is not valid JSON";
        QTest::newRow("config wrong shape") << "config" << "[1, 2, 3]" << "attribute 'config'";
        QTest::newRow("layers wrong shape") << "layers" << "{\"a\": 1}" << "attribute 'layers'";
        QTest::newRow("unknown architecture") << "architecture" << "gpt-17" << "gpt-17";
    }
    void badRootAttribute() {
        QFETCH(QString, attr);
        QFETCH(QString, value);
        QFETCH(QString, expected);
        const std::string path = edited("bad_" + attr + ".h5", [&](hid_t f) {
            set_str_attr(f, attr.toUtf8().constData(), value.toStdString());
            return true;
        });
        QVERIFY(!path.empty());
        expect_error(path, {expected});
    }

    void badVersion() {
        const std::string path = edited("version99.h5", [](hid_t f) {
            set_int_attr(f, "edgefusion_format_version", 99);
            return true;
        });
        expect_error(path, {"format version 99 is not supported"});
        const std::string path2 = edited("version_str.h5", [](hid_t f) {
            set_str_attr(f, "edgefusion_format_version", "1");
            return true;
        });
        expect_error(path2, {"'edgefusion_format_version' is not an integer"});
    }

    void badDtypeAttribute_data() {
        QTest::addColumn<QString>("tensor");
        QTest::addColumn<QString>("dtype");
        QTest::addColumn<QString>("expected");
        QTest::newRow("unknown name") << "blk.0.attn_q.weight" << "q9_9" << "unknown dtype 'q9_9'";
        QTest::newRow("empty name") << "blk.0.attn_q.weight" << "" << "unknown dtype ''";
        QTest::newRow("other block size") << "blk.0.attn_q.weight" << "q4_0" << "bytes but q4_0";
        QTest::newRow("f32 says q8_0") << "output_norm.weight" << "q8_0" << "must be a 1-D uint8 dataset";
        QTest::newRow("f16 says f32") << "token_embd.weight" << "f32" << "does not match dtype f32";
        QTest::newRow("q8_0 says f16") << "blk.0.attn_q.weight" << "f16" << "does not match dtype f16";
    }
    void badDtypeAttribute() {
        QFETCH(QString, tensor);
        QFETCH(QString, dtype);
        QFETCH(QString, expected);
        const std::string path = edited("dtype_" + QString(QTest::currentDataTag()).replace(' ', '_') + ".h5", [&](hid_t f) {
            hid_t d = H5Dopen2(f, ("/tensors/" + tensor.toStdString()).c_str(), H5P_DEFAULT);
            if (d < 0) return false;
            set_str_attr(d, "dtype", dtype.toStdString());
            H5Dclose(d);
            return true;
        });
        QVERIFY(!path.empty());
        expect_error(path, {"tensor " + tensor, expected});
    }

    void badShapeAttribute_data() {
        QTest::addColumn<QString>("tensor");
        QTest::addColumn<QList<qint64>>("shape");
        QTest::addColumn<QString>("expected");
        QTest::newRow("absurd q8_0") << "blk.0.attn_q.weight" << QList<qint64>{qint64(1) << 40, qint64(1) << 20} << "needs";
        QTest::newRow("overflow") << "blk.0.attn_q.weight" << QList<qint64>{qint64(1) << 62, qint64(1) << 62} << "shape";
        QTest::newRow("negative") << "output_norm.weight" << QList<qint64>{-64} << "invalid shape";
        QTest::newRow("f32 extent mismatch") << "output_norm.weight" << QList<qint64>{32, 2} << "does not match the shape";
        QTest::newRow("row not in blocks") << "blk.0.attn_q.weight" << QList<qint64>{64, 48} << "not a multiple";
    }
    void badShapeAttribute() {
        QFETCH(QString, tensor);
        QFETCH(QList<qint64>, shape);
        QFETCH(QString, expected);
        const std::string path = edited("shape_" + QString(QTest::currentDataTag()).replace(' ', '_') + ".h5", [&](hid_t f) {
            hid_t d = H5Dopen2(f, ("/tensors/" + tensor.toStdString()).c_str(), H5P_DEFAULT);
            if (d < 0) return false;
            set_shape_attr(d, std::vector<int64_t>(shape.begin(), shape.end()));
            H5Dclose(d);
            return true;
        });
        QVERIFY(!path.empty());
        expect_error(path, {"tensor " + tensor, expected});
    }

    // A dataset whose extent claims far more data than the file stores: refused before allocating.
    void absurdExtent() {
        const std::string path = edited("absurd_extent.h5", [](hid_t f) {
            hid_t g = H5Gopen2(f, "/tensors", H5P_DEFAULT);
            const hsize_t n = hsize_t(34) << 35, chunk = 1 << 20;  // q8_0 (2^35, 32): 1.1 TB
            hid_t sp = H5Screate_simple(1, &n, nullptr);
            hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
            H5Pset_chunk(dcpl, 1, &chunk);
            const unsigned cd[2] = {3, unsigned(chunk)};
            H5Pset_filter(dcpl, kZstdFilterId, H5Z_FLAG_MANDATORY, 2, cd);
            hid_t d = H5Dcreate2(g, "huge.weight", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            if (d < 0) return false;
            set_str_attr(d, "dtype", "q8_0");
            set_shape_attr(d, {int64_t(1) << 35, 32});
            H5Dclose(d);
            H5Pclose(dcpl);
            H5Sclose(sp);
            H5Gclose(g);
            return true;
        });
        QVERIFY(!path.empty());
        expect_error(path, {"tensor huge.weight", "stores only 0"});
    }

    // Other writers may emit frames without a content size (streaming mode): those decode, but
    // only up to the chunk size recorded in the filter parameters.
    void framesWithoutContentSize_data() {
        QTest::addColumn<int>("factor");  // decoded size in chunks
        QTest::newRow("exact chunk") << 1;
        QTest::newRow("twice the chunk") << 2;
    }
    void framesWithoutContentSize() {
        QFETCH(int, factor);
        const Tensor* norm = model_.find("output_norm.weight");
        QVERIFY(norm && norm->dtype == DType::F32);
        const std::string path = edited(QString("nosize_%1.h5").arg(factor), [&](hid_t f) {
            hid_t d = H5Dopen2(f, "/tensors/output_norm.weight", H5P_DEFAULT);
            if (d < 0) return false;
            std::string plain;
            for (int i = 0; i < factor; ++i) plain.append(reinterpret_cast<const char*>(norm->data.data()), norm->data.size());
            ZSTD_CCtx* cctx = ZSTD_createCCtx();
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
            std::vector<char> frame(ZSTD_compressBound(plain.size()));
            const size_t n = ZSTD_compress2(cctx, frame.data(), frame.size(), plain.data(), plain.size());
            ZSTD_freeCCtx(cctx);
            if (ZSTD_isError(n) || ZSTD_getFrameContentSize(frame.data(), n) != ZSTD_CONTENTSIZE_UNKNOWN) return false;
            frame.resize(n);
            const bool ok = write_chunk0(d, frame);
            H5Dclose(d);
            return ok;
        });
        QVERIFY(!path.empty());
        auto r = load(path);
        if (factor == 1) {
            QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
            const Tensor* back = r->find("output_norm.weight");
            QVERIFY(back && back->data.size() == norm->data.size());
            QVERIFY(std::memcmp(back->data.data(), norm->data.data(), norm->data.size()) == 0);
        } else {
            expect_error(path, {"tensor output_norm.weight", "oversized frame"});
        }
    }

    // Chunks whose bytes zstd cannot decode: an error naming the tensor, not a crash or garbage.
    void corruptChunk_data() {
        QTest::addColumn<QString>("object");
        QTest::addColumn<int>("kind");
        QTest::addColumn<QString>("expected");
        enum { Garbage, FlipMiddle, CutHalf, HugeHeader, Empty };
        QTest::newRow("garbage bytes") << "/tensors/blk.0.attn_q.weight" << int(Garbage) << "not a zstd frame";
        QTest::newRow("flipped byte mid-frame") << "/tensors/token_embd.weight" << int(FlipMiddle) << "zstd filter";
        QTest::newRow("frame cut in half") << "/tensors/blk.0.ffn_down.weight" << int(CutHalf) << "zstd filter";
        QTest::newRow("header claims 1 TiB") << "/tensors/output_norm.weight" << int(HugeHeader)
                                             << "frame claims 1099511627776 bytes";
        QTest::newRow("vocab scores garbage") << "/vocab/scores" << int(Garbage) << "/vocab/scores";
        QTest::newRow("single zero byte") << "/tensors/blk.1.attn_k.weight" << int(Empty) << "zstd filter";
    }
    void corruptChunk() {
        QFETCH(QString, object);
        QFETCH(int, kind);
        QFETCH(QString, expected);
        const std::string path = edited("chunk_" + QString(QTest::currentDataTag()).replace(' ', '_') + ".h5", [&](hid_t f) {
            hid_t d = H5Dopen2(f, object.toStdString().c_str(), H5P_DEFAULT);
            if (d < 0) return false;
            std::vector<char> bytes = read_chunk0(d);
            if (bytes.size() < 16) return false;
            switch (kind) {
                case 0:  // garbage
                    bytes.assign(300, 0);
                    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 131 + 7) & 0xff);
                    break;
                case 1: bytes[bytes.size() / 2] ^= char(0x5a); break;
                case 2: bytes.resize(bytes.size() / 2); break;
                case 3: {  // magic, descriptor (8-byte content size, single segment), size 2^40, empty last raw block
                    const unsigned char hdr[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0, 0};
                    bytes.assign(reinterpret_cast<const char*>(hdr), reinterpret_cast<const char*>(hdr) + sizeof hdr);
                    break;
                }
                default: bytes.assign(1, 0); break;
            }
            const bool ok = write_chunk0(d, bytes);
            H5Dclose(d);
            return ok;
        });
        QVERIFY(!path.empty());
        QString name = object.mid(object.lastIndexOf('/') + 1);
        expect_error(path, {object.startsWith("/vocab") ? object : "tensor " + name, "cannot read", expected});
    }
};

QTEST_GUILESS_MAIN(TestHdf5Corrupt)
#include "test_hdf5_corrupt.moc"
