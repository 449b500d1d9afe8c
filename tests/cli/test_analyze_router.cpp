// `edgefusion analyze-router`: on an edgefusion model with chosen router logits, the table, the JSON
// (gates = sigmoid(alpha / tau) recomputed here), the SVG (parsed as XML: one bar per layer, its
// colour = branch, its height proportional to g) and the PNG, decoded by Python's own zlib in an
// independent decoder (signature, chunk CRCs, IHDR, all five row filters) whose bar colours and
// heights are checked the same way. Directories (a training run's checkpoint_final/) and bad input.
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QXmlStreamReader>
#include <QtTest>

#include <cmath>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/synth.h"
#include "tests/support/test_support.h"

using ef::test::cli_path;
using ef::test::run_process;

namespace {

const std::vector<float> kAlphas = {-2.0f, 1.5f, -0.8f, 2.5f, -1.2f, -3.0f, 0.6f};
constexpr float kTau = 1.25f;

double gate_of(float alpha) { return 1.0 / (1.0 + std::exp(-double(alpha) / double(kTau))); }

// Writes an edgefusion model (or another architecture) with kAlphas as its router logits.
void write_model(const QString& path, const char* arch = "edgefusion") {
    ef::SynthOptions o;
    o.arch = arch;
    o.dim = 64;
    o.n_layers = std::string(arch) == "edgefusion" ? int64_t(kAlphas.size()) : 2;
    o.vocab = 300;
    o.seed = 11;
    o.context_length = 64;
    if (std::string(arch) == "edgefusion") o.router_temperature = kTau;
    auto m = ef::synth_model(o);
    if (!m) qFatal("synth: %s", m.message().c_str());
    if (std::string(arch) == "edgefusion")
        for (size_t i = 0; i < kAlphas.size(); ++i) {
            const std::string name = "blk." + std::to_string(i) + ".router_gate";
            auto t = ef::Tensor::from_f32(name, {1}, std::span<const float>(&kAlphas[i], 1));
            if (!t) qFatal("%s", t.message().c_str());
            *m->find(name) = std::move(t).value();
        }
    auto s = ef::save_model(*m, path.toStdString());
    if (!s) qFatal("save: %s", s.message().c_str());
}

// An independent PNG reader (Python's zlib) that prints the bars it finds along the plot's
// baseline: runs of columns in the attention or SSM colour whose lowest coloured pixel is the
// lowest of all, each with its colour and height (rows of that colour above the baseline, the
// dashed threshold line allowed in between).
const char* kDecoder = R"PY(
import json, struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'bad signature'
pos, idat, ihdr = 8, b'', None
while pos < len(data):
    n, = struct.unpack('>I', data[pos:pos+4]); typ = data[pos+4:pos+8]; body = data[pos+8:pos+8+n]
    crc, = struct.unpack('>I', data[pos+8+n:pos+12+n])
    assert zlib.crc32(typ + body) & 0xffffffff == crc, 'bad CRC in ' + typ.decode()
    if typ == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
    if typ == b'IDAT': idat += body
    pos += 12 + n
    if typ == b'IEND': break
w, h, depth, ctype, comp, filt, inter = ihdr
assert depth == 8 and ctype == 2 and inter == 0
raw = zlib.decompress(idat); bpp = 3; stride = w * bpp
rows, prev, i = [], bytearray(stride), 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
    for x in range(stride):
        a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else: assert f == 0, 'bad filter'
    rows.append(line); prev = line
px = lambda x, y: '%02x%02x%02x' % tuple(rows[y][3*x:3*x+3])
ATT, SSM, THR = sys.argv[2], sys.argv[3], sys.argv[4]
bottom = {}
for x in range(w):
    for y in range(h - 1, -1, -1):
        if px(x, y) in (ATT, SSM): bottom[x] = y; break
base = max(bottom.values())
bars, x = [], 0
while x < w:
    if bottom.get(x) == base:
        col = px(x, base); x0 = x
        while x < w and bottom.get(x) == base and px(x, base) == col: x += 1
        mid = (x0 + x - 1) // 2; top = base; y = base
        while y >= 0 and px(mid, y) in (col, THR):
            if px(mid, y) == col: top = y
            y -= 1
        bars.append({'color': col, 'x0': x0, 'x1': x - 1, 'height': base - top + 1})
    else: x += 1
print(json.dumps({'width': w, 'height': h, 'bars': bars}))
)PY";

// Heights proportional to the gates: h_i = g_i * H for one H (the plot height), within rounding.
void check_heights(const std::vector<double>& heights) {
    double hg = 0, gg = 0;  // least-squares H
    for (size_t i = 0; i < heights.size(); ++i) hg += heights[i] * gate_of(kAlphas[i]), gg += gate_of(kAlphas[i]) * gate_of(kAlphas[i]);
    const double H = hg / gg;
    QVERIFY(H > 100);
    for (size_t i = 0; i < heights.size(); ++i)
        QVERIFY2(std::abs(heights[i] - gate_of(kAlphas[i]) * H) <= 2.0,
                 qPrintable(QString("bar %1: height %2, expected %3").arg(i).arg(heights[i]).arg(gate_of(kAlphas[i]) * H)));
}

}  // namespace

class TestAnalyzeRouter : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() { ef::register_hdf5_format(); }
    void tableAndJson();
    void plots();
    void directories();
    void badInput();
};

void TestAnalyzeRouter::tableAndJson() {
    QTemporaryDir dir;
    const QString model = dir.filePath("hybrid.gguf");
    write_model(model);
    auto r = run_process(cli_path(), {"analyze-router", "--checkpoint", model});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    for (const char* s : {"layer", "branch", "entropy", "ssm_frac", "GFLOPs/token", "dense twin", "converged"})
        QVERIFY2(r.out.contains(s), s);
    QCOMPARE(r.out.count(QRegularExpression("\\n\\s+\\d+\\s+-?[0-9.e+-]+\\s+[0-9.]+\\s+[0-9.]+\\s+(attention|ssm)\\s")), int(kAlphas.size()));

    r = run_process(cli_path(), {"analyze-router", "--checkpoint", model, "--json"});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    QJsonParseError pe;
    const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8(), &pe).object();
    QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(pe.errorString()));
    QCOMPARE(o["architecture"].toString(), QString("edgefusion"));
    const QJsonArray layers = o["layers"].toArray();
    QCOMPARE(layers.size(), qsizetype(kAlphas.size()));
    int n_ssm = 0;
    double h = 0;
    for (int i = 0; i < layers.size(); ++i) {
        const QJsonObject l = layers[i].toObject();
        const double g = gate_of(kAlphas[size_t(i)]);
        QVERIFY(std::abs(l["gate"].toDouble() - g) < 1e-6);
        QCOMPARE(l["branch"].toString(), QString(g < 0.5 ? "ssm" : "attention"));
        const double e = -(g * std::log2(g) + (1 - g) * std::log2(1 - g));
        QVERIFY(std::abs(l["entropy_bits"].toDouble() - e) < 1e-5);
        n_ssm += g < 0.5;
        h += e;
    }
    const QJsonObject s = o["summary"].toObject();
    QCOMPARE(s["ssm_layers"].toInt(), n_ssm);
    QVERIFY(std::abs(s["ssm_frac"].toDouble() - double(n_ssm) / double(kAlphas.size())) < 1e-12);
    QVERIFY(std::abs(s["mean_gate_entropy_bits"].toDouble() - h / double(kAlphas.size())) < 1e-5);
    QCOMPARE(s["converged"].toBool(), false);  // these gates are soft
    QVERIFY(s["gflops_per_token"].toDouble() > 0 && s["dense_gflops_per_token"].toDouble() > 0);
    const double red = 100.0 * (1.0 - s["gflops_per_token"].toDouble() / s["dense_gflops_per_token"].toDouble());
    QVERIFY(std::abs(s["flops_reduction_pct"].toDouble() - red) < 1e-9);
    QCOMPARE(s["position"].toInt(), 32);  // context_length / 2

    // --position: the dense twin's attention costs 4 * heads * head_dim (= dim here) per position and layer.
    const auto dense_at = [&](const char* pos) {
        auto p = run_process(cli_path(), {"analyze-router", "--checkpoint", model, "--json", "--position", pos});
        if (p.exit_code != 0) return -1.0;
        const QJsonObject sum = QJsonDocument::fromJson(p.out.toUtf8()).object()["summary"].toObject();
        return sum["position"].toInt() == QString(pos).toInt() ? sum["dense_gflops_per_token"].toDouble() : -2.0;
    };
    const double d0 = dense_at("0"), d10 = dense_at("10");
    QVERIFY(d0 > 0 && d10 > 0);
    QVERIFY(std::abs((d10 - d0) - 4.0 * 64 * double(kAlphas.size()) * 10 * 1e-9) < 1e-12);
    QCOMPARE(run_process(cli_path(), {"analyze-router", "--checkpoint", model, "--position", "-3"}).exit_code, 1);
}

void TestAnalyzeRouter::plots() {
    QTemporaryDir dir;
    const QString model = dir.filePath("hybrid.safetensors");
    write_model(model);
    const QString prefix = dir.filePath("out/router");
    QVERIFY(QDir().mkpath(dir.filePath("out")));
    auto r = run_process(cli_path(), {"analyze-router", "--checkpoint", model, "--plot", prefix, "--json"});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8()).object();
    QCOMPARE(o["plot"].toObject()["png"].toString(), prefix + ".png");

    // SVG: well-formed XML, one bar per layer in its branch's colour, heights proportional to g.
    QFile svg(prefix + ".svg");
    QVERIFY(svg.open(QIODevice::ReadOnly));
    QXmlStreamReader xml(&svg);
    std::vector<double> heights;
    std::vector<QString> fills;
    QString title;
    bool in_svg_text = false, in_value = false;
    QStringList values;  // the g printed above each bar
    while (!xml.atEnd()) {
        xml.readNext();
        if (xml.isStartElement() && xml.name() == u"text" && xml.attributes().value("class") == u"value") in_value = true;
        else if (xml.isCharacters() && in_value) {
            values << xml.text().toString();
            in_value = false;
        }
        if (xml.isStartElement() && xml.name() == u"rect" && xml.attributes().value("class") == u"bar") {
            heights.push_back(xml.attributes().value("height").toDouble());
            fills.push_back(xml.attributes().value("fill").toString());
        }
        if (xml.isStartElement() && xml.name() == u"text" && title.isEmpty()) in_svg_text = true;
        if (xml.isCharacters() && in_svg_text) {
            title = xml.text().toString();
            in_svg_text = false;
        }
    }
    QVERIFY2(!xml.hasError(), qPrintable(xml.errorString()));
    QCOMPARE(heights.size(), kAlphas.size());
    for (size_t i = 0; i < kAlphas.size(); ++i)
        QCOMPARE(fills[i], QString(gate_of(kAlphas[i]) < 0.5 ? "#e07b24" : "#2f6fb5"));
    check_heights(heights);
    QCOMPARE(values.size(), qsizetype(kAlphas.size()));
    for (size_t i = 0; i < kAlphas.size(); ++i) QCOMPARE(values[qsizetype(i)], QString::number(gate_of(kAlphas[i]), 'f', 2));
    QVERIFY2(title.contains("ssm_frac") && title.contains("entropy"), qPrintable(title));

    // PNG through the independent decoder.
    const QString script = dir.filePath("decode_png.py");
    QFile f(script);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(kDecoder);
    f.close();
    r = run_process("/usr/bin/python3", {script, prefix + ".png", "2f6fb5", "e07b24", "c0392b"});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const QJsonObject d = QJsonDocument::fromJson(r.out.toUtf8()).object();
    QVERIFY(d["width"].toInt() >= 600);
    QVERIFY(d["height"].toInt() >= 300);
    // IHDR size as stored, read here byte by byte too.
    QFile png(prefix + ".png");
    QVERIFY(png.open(QIODevice::ReadOnly));
    const QByteArray head = png.read(24);
    QCOMPARE(head.left(8), QByteArray("\x89PNG\r\n\x1a\n", 8));
    QCOMPARE(head.mid(12, 4), QByteArray("IHDR"));
    const auto be32 = [&](int at) { return (quint8(head[at]) << 24) | (quint8(head[at + 1]) << 16) | (quint8(head[at + 2]) << 8) | quint8(head[at + 3]); };
    QCOMPARE(int(be32(16)), d["width"].toInt());
    QCOMPARE(int(be32(20)), d["height"].toInt());
    const QJsonArray bars = d["bars"].toArray();
    QCOMPARE(bars.size(), qsizetype(kAlphas.size()));
    std::vector<double> png_heights;
    int prev_x = -1;
    for (int i = 0; i < bars.size(); ++i) {
        const QJsonObject b = bars[i].toObject();
        QCOMPARE(b["color"].toString(), QString(gate_of(kAlphas[size_t(i)]) < 0.5 ? "e07b24" : "2f6fb5"));
        QVERIFY(b["x0"].toInt() > prev_x);
        prev_x = b["x1"].toInt();
        png_heights.push_back(b["height"].toDouble());
    }
    check_heights(png_heights);
    // The raster and the SVG share one layout: the same bar heights in pixels.
    for (size_t i = 0; i < heights.size(); ++i) QCOMPARE(png_heights[i], heights[i]);
}

void TestAnalyzeRouter::directories() {
    QTemporaryDir dir;
    // A training output's checkpoint_final/ with one model file beside other files.
    const QString ck = dir.filePath("run/checkpoint_final");
    QVERIFY(QDir().mkpath(ck));
    write_model(ck + "/model.h5");
    QFile note(ck + "/config.yaml");
    QVERIFY(note.open(QIODevice::WriteOnly));
    note.write("steps: 10\n");
    note.close();
    auto r = run_process(cli_path(), {"analyze-router", "--checkpoint", ck, "--json"});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    QVERIFY2(r.err.contains("model.h5"), qPrintable(r.err));  // says which file it read
    QCOMPARE(QJsonDocument::fromJson(r.out.toUtf8()).object()["layers"].toArray().size(), qsizetype(kAlphas.size()));
    // With several model files the one named model.* is taken ...
    write_model(ck + "/other.gguf");
    r = run_process(cli_path(), {"analyze-router", "--checkpoint", ck});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    QVERIFY(r.err.contains("model.h5"));
    // ... and without one the choice is the user's.
    QVERIFY(QFile::remove(ck + "/model.h5"));
    write_model(ck + "/third.gguf");
    r = run_process(cli_path(), {"analyze-router", "--checkpoint", ck});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("several model files") && r.err.contains("other.gguf") && r.err.contains("third.gguf"), qPrintable(r.err));
    // The optimizer state beside a single model file is not a candidate.
    const QString ck2 = dir.filePath("run2/checkpoint_final");
    QVERIFY(QDir().mkpath(ck2));
    write_model(ck2 + "/weights.gguf");
    write_model(ck2 + "/train_state.h5");
    r = run_process(cli_path(), {"analyze-router", "--checkpoint", ck2});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    QVERIFY2(r.err.contains("weights.gguf"), qPrintable(r.err));
    // An empty directory.
    QVERIFY(QDir().mkpath(dir.filePath("empty")));
    r = run_process(cli_path(), {"analyze-router", "--checkpoint", dir.filePath("empty")});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("no model file"), qPrintable(r.err));
    // --help names the directory form.
    r = run_process(cli_path(), {"analyze-router", "--help"});
    QCOMPARE(r.exit_code, 0);
    QVERIFY(r.out.contains("checkpoint_final"));
}

void TestAnalyzeRouter::badInput() {
    QTemporaryDir dir;
    const QString llama = dir.filePath("dense.gguf");
    write_model(llama, "llama");
    auto r = run_process(cli_path(), {"analyze-router", "--checkpoint", llama});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("architecture 'llama'") && r.err.contains("edgefusion"), qPrintable(r.err));
    r = run_process(cli_path(), {"analyze-router"});
    QCOMPARE(r.exit_code, 1);
    QVERIFY(r.err.contains("--checkpoint"));
    r = run_process(cli_path(), {"analyze-router", "--checkpoint", dir.filePath("missing.gguf")});
    QCOMPARE(r.exit_code, 1);
    QVERIFY(r.err.contains("missing.gguf"));
    r = run_process(cli_path(), {"analyze-router", "--checkpoint", llama, "--bogus"});
    QCOMPARE(r.exit_code, 1);
    // An unwritable plot prefix fails cleanly and leaves no file behind.
    const QString model = dir.filePath("hybrid.gguf");
    write_model(model);
    r = run_process(cli_path(), {"analyze-router", "--checkpoint", model, "--plot", dir.filePath("no/such/dir/p")});
    QCOMPARE(r.exit_code, 1);
    QVERIFY(!QFile::exists(dir.filePath("no/such/dir/p.svg")));
}

QTEST_GUILESS_MAIN(TestAnalyzeRouter)
#include "test_analyze_router.moc"
