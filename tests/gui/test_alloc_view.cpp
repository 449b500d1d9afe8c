// The bit-allocation dock (issue 4), offscreen: its item models under QAbstractItemModelTester; the
// real worker path (measure_sensitivity on the view's pool, result by queued signal) against a direct
// measure_sensitivity call on windows built here from the library (split_calibration_text +
// calibration_windows), with the proxy and with KL; the table, chart and labels against allocate_bits
// called directly with the same units and budget; the slider, pins, budgets below the minimum (the
// minimum recomputed here from the options), the memory budget with the KV cache, cancel keeping the
// previous measurement, quantize + save, and stories260K in the main window (with a screenshot).
#include <QAbstractItemModelTester>
#include <QDir>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QFile>
#include <QImage>
#include <QLabel>
#include <QSignalSpy>
#include <QSlider>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "core/formats/format.h"
#include "core/synth.h"
#include "quant/bit_alloc.h"
#include "quant/sensitivity.h"
#include "runtime/calib/calibration.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"
#include "views/alloc_models.h"
#include "views/alloc_view.h"
#include "views/format_util.h"
#include "views/main_window.h"
#include "views/quantize_dialog.h"

using namespace ef;
using ef::test::screenshot_dir;
using namespace ef::views;

namespace {

std::shared_ptr<const Model> synth(int64_t dim = 64, int64_t layers = 3) {
    SynthOptions o;
    o.arch = "llama";
    o.dim = dim;
    o.n_layers = layers;
    o.vocab = 300;
    o.seed = 7;
    o.context_length = 64;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model: %s", m.message().c_str());
    return std::make_shared<const Model>(std::move(m).value());
}

// The calibration windows, built here from the library (not through the view).
std::vector<std::vector<int32_t>> windows_for(const Model& m, int n, int len) {
    std::ifstream in(kDefaultCalibrationText, std::ios::binary);
    if (!in) qFatal("cannot open %s", kDefaultCalibrationText);
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    auto tok = Tokenizer::create(m.vocab);
    if (!tok) qFatal("tokenizer: %s", tok.message().c_str());
    auto w = calibration_windows(*tok, split_calibration_text(text).calib, len, n);
    if (!w) qFatal("windows: %s", w.message().c_str());
    return *w;
}

bool wait_for(QSignalSpy& spy, int ms = 120000) {
    if (!spy.isEmpty()) return true;
    return spy.wait(ms);
}

bool measure(AllocView& v) {
    QSignalSpy ready(&v, &AllocView::measurementReady), failed(&v, &AllocView::measurementFailed);
    if (!v.startMeasure()) return false;
    for (int i = 0; i < 240 && ready.isEmpty() && failed.isEmpty(); ++i) QTest::qWait(500);
    if (!failed.isEmpty()) qWarning("measurement failed: %s", qPrintable(failed.first().at(0).toString()));
    return !ready.isEmpty();
}

// The table, chart and summary against a direct allocate_bits with the view's units and budget.
void check_against_solver(AllocView& v, const std::vector<AllocUnit>& units, const AllocBudget& b, bool proxy) {
    auto r = allocate_bits(units, b);
    QVERIFY2(r, r ? "" : r.message().c_str());
    QVERIFY(v.allocation().has_value());
    QCOMPARE(v.allocation()->choice, r->choice);
    AllocUnitModel* m = v.unitModel();
    QCOMPARE(m->rowCount(), int(units.size()));
    const auto chart = v.chartBits();
    const auto second = v.chartSecondary();
    QCOMPARE(chart.size(), units.size());
    double loss = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < m->rowCount(); ++i) {
        const AllocOption& o = units[size_t(i)].options[size_t(r->choice[size_t(i)])];
        loss += o.loss;
        bytes += o.bytes;
        auto cell = [&](int col) { return m->index(i, col).data(AllocUnitModel::SortRole); };
        QCOMPARE(cell(AllocUnitModel::UnitColumn).toString(), QString::fromStdString(units[size_t(i)].name));
        QCOMPARE(cell(AllocUnitModel::WeightsColumn).toLongLong(), units[size_t(i)].weights);
        QCOMPARE(cell(AllocUnitModel::BitsColumn).toInt(), o.bits);
        QCOMPARE(cell(AllocUnitModel::BytesColumn).toULongLong(), qulonglong(o.bytes));
        QCOMPARE(cell(AllocUnitModel::LossColumn).toDouble(), o.loss);
        QCOMPARE(cell(AllocUnitModel::EffectiveBitsColumn).toDouble(), 8.0 * double(o.bytes) / double(units[size_t(i)].weights));
        QCOMPARE(m->index(i, AllocUnitModel::BitsColumn).data().toString(), QString::number(o.bits));
        QCOMPARE(chart[size_t(i)], double(o.bits));
        QCOMPARE(second[size_t(i)], o.loss);  // default secondary series: the sensitivity
    }
    QVERIFY(std::abs(loss - r->loss) <= 1e-12 * std::max(1.0, loss));
    QCOMPARE(bytes, r->unit_bytes);
    const uint64_t model_bytes = bytes + v.measurement()->result.plan.kept_bytes;
    QVERIFY2(v.lossLabel()->text().contains(QString::number(loss, 'g', 5)), qPrintable(v.lossLabel()->text()));
    QVERIFY(v.lossLabel()->text().contains(proxy ? "proxy" : "KL"));
    QVERIFY2(v.sizeLabel()->text().contains(grouped(qint64(model_bytes))), qPrintable(v.sizeLabel()->text()));
    int64_t w = 0;
    double code = 0;
    for (size_t i = 0; i < units.size(); ++i) {
        w += units[i].weights;
        code += double(units[i].options[size_t(r->choice[i])].bits) * double(units[i].weights);
    }
    const QString eff = QString::number(8.0 * double(bytes) / double(w), 'f', 3), cb = QString::number(code / double(w), 'f', 3);
    QVERIFY2(v.bitsLabel()->text().contains(eff + " effective"), qPrintable(v.bitsLabel()->text()));
    QVERIFY2(v.bitsLabel()->text().contains(cb + " code"), qPrintable(v.bitsLabel()->text()));
    QVERIFY(v.errorLabel()->isHidden());
}

void save_and_check(QWidget& w, const QString& name) {
    const QImage shot = w.grab().toImage();
    const QString file = screenshot_dir() + "/" + name;
    QVERIFY(shot.save(file, "PNG", 0));
    QImage back(file);
    QVERIFY(!back.isNull());
    std::set<QRgb> colors;
    for (int y = 0; y < back.height(); y += 3)
        for (int x = 0; x < back.width(); x += 3) colors.insert(back.pixel(x, y));
    QVERIFY2(colors.size() > 60, qPrintable(QString("only %1 colours: blank screenshot?").arg(colors.size())));
}

}  // namespace

class TestAllocView : public QObject {
    Q_OBJECT
private slots:
    void modelsUnderTester();
    void measureMatchesDirect_data();
    void measureMatchesDirect();
    void sliderMovesAllocation();
    void pinIsRespected();
    void belowMinimum_data();
    void belowMinimum();
    void memoryBudgetCountsState();
    void cancelKeepsPrevious();
    void quantizeAndSave();
    void mainWindowStories260K();
};

void TestAllocView::modelsUnderTester() {
    auto m = synth();
    SensitivityOptions o;
    o.proxy = true;
    o.bits = {2, 4, 8};
    auto s = measure_sensitivity(*m, {}, o);
    QVERIFY2(s, s ? "" : s.message().c_str());
    auto meas = std::make_shared<AllocMeasurement>();
    meas->result = *s;
    meas->options = o;
    AllocUnitModel units;
    AllocOptionModel options;
    QAbstractItemModelTester t1(&units, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester t2(&options, QAbstractItemModelTester::FailureReportingMode::QtTest);
    units.setMeasurement(meas);
    QCOMPARE(units.rowCount(), int(s->plan.units.size()));
    QCOMPARE(units.index(0, AllocUnitModel::BitsColumn).data().toString(), QString("—"));  // no solve yet
    AllocBudget b;
    b.average_bits = 4.5;
    auto r = allocate_bits(s->plan.units, b);
    QVERIFY(r);
    units.setAllocation(*r);
    // Pins through the edit role: a width that is an option pins, one that is not is refused, 0 unpins.
    QSignalSpy pins(&units, &AllocUnitModel::pinsChanged);
    const QModelIndex pin = units.index(1, AllocUnitModel::PinColumn);
    QVERIFY(units.flags(pin) & Qt::ItemIsEditable);
    QVERIFY(!(units.flags(units.index(1, AllocUnitModel::BitsColumn)) & Qt::ItemIsEditable));
    QVERIFY(units.setData(pin, 8));
    QCOMPARE(pins.size(), 1);
    QCOMPARE(units.pins()[1], std::optional<int>(2));
    QCOMPARE(units.unitsWithPins()[1].pin, std::optional<int>(2));
    QVERIFY(!units.setData(pin, 5));
    QCOMPARE(units.pins()[1], std::optional<int>(2));
    QCOMPARE(pin.data(Qt::EditRole).toInt(), 8);
    QVERIFY(units.setData(pin, 0));
    QVERIFY(!units.pins()[1]);
    QCOMPARE(pins.size(), 2);
    units.setPin(0, 2);
    units.clearPins();
    QVERIFY(!units.pins()[0]);
    options.setUnit(s->plan.units[0], r->choice[0], -1);
    QCOMPARE(options.rowCount(), 3);
    for (int i = 0; i < 3; ++i) {
        QCOMPARE(options.index(i, AllocOptionModel::BitsColumn).data(Qt::UserRole).toInt(), o.bits[size_t(i)]);
        QCOMPARE(options.index(i, AllocOptionModel::BytesColumn).data(Qt::UserRole).toULongLong(),
                 qulonglong(s->plan.units[0].options[size_t(i)].bytes));
        QCOMPARE(options.index(i, AllocOptionModel::StateColumn).data(Qt::UserRole).toBool(), i == r->choice[0]);
    }
    options.setUnit(std::nullopt, -1, -1);
    units.setAllocation(std::nullopt);
    units.setMeasurement(nullptr);
    QCOMPARE(units.rowCount(), 0);
    QCOMPARE(options.rowCount(), 0);
}

void TestAllocView::measureMatchesDirect_data() {
    QTest::addColumn<bool>("proxy");
    QTest::addColumn<double>("bits");
    QTest::newRow("proxy 3.5") << true << 3.5;
    QTest::newRow("proxy 5.2") << true << 5.2;
    QTest::newRow("kl 3.5") << false << 3.5;
    QTest::newRow("kl 4.6") << false << 4.6;
}

void TestAllocView::measureMatchesDirect() {
    QFETCH(bool, proxy);
    QFETCH(double, bits);
    auto m = synth();
    AllocView v;
    v.setModel(m);
    v.setMeasureOptions({2, 3, 4, 6, 8}, 32, 0.01, proxy);
    v.setCalibration(2, 16);
    QVERIFY(measure(v));
    const AllocMeasurement& meas = *v.measurement();
    QCOMPARE(meas.windows, 2);
    QCOMPARE(meas.window_tokens, 16);
    QCOMPARE(meas.result.proxy, proxy);
    // The same measurement without the view.
    SensitivityOptions o;
    o.bits = {2, 3, 4, 6, 8};
    o.block = 32;
    o.outlier_fraction = 0.01;
    o.proxy = proxy;
    auto direct = measure_sensitivity(*m, windows_for(*m, 2, 16), o);
    QVERIFY2(direct, direct ? "" : direct.message().c_str());
    const auto& du = direct->plan.units;
    QCOMPARE(meas.result.plan.units.size(), du.size());
    QCOMPARE(meas.result.plan.kept_bytes, direct->plan.kept_bytes);
    if (!proxy) QCOMPARE(meas.result.positions, direct->positions);
    for (size_t u = 0; u < du.size(); ++u) {
        const AllocUnit& vu = meas.result.plan.units[u];
        QCOMPARE(vu.name, du[u].name);
        QCOMPARE(vu.weights, du[u].weights);
        QCOMPARE(vu.options.size(), du[u].options.size());
        for (size_t i = 0; i < du[u].options.size(); ++i) {
            QCOMPARE(vu.options[i].bits, du[u].options[i].bits);
            QCOMPARE(vu.options[i].bytes, du[u].options[i].bytes);
            const double a = vu.options[i].loss, b = du[u].options[i].loss;
            QVERIFY2(std::abs(a - b) <= 1e-9 * std::max(1e-12, std::abs(b)) + 1e-15,
                     qPrintable(QString("%1 @%2: %3 vs %4").arg(vu.name.c_str()).arg(vu.options[i].bits).arg(a).arg(b)));
        }
    }
    QVERIFY(QString(v.unitModel()->headerData(AllocUnitModel::LossColumn, Qt::Horizontal).toString()).contains(proxy ? "Proxy" : "KL"));
    v.setBudgetKind(BudgetKind::AverageBits);
    v.setBudgetValue(bits);
    AllocBudget b;
    b.average_bits = bits;
    check_against_solver(v, meas.result.plan.units, b, proxy);
    // Code bits: the same units, the other budget.
    v.setBudgetKind(BudgetKind::AverageCodeBits);
    v.setBudgetValue(bits);
    b.kind = BudgetKind::AverageCodeBits;
    check_against_solver(v, meas.result.plan.units, b, proxy);
}

void TestAllocView::sliderMovesAllocation() {
    auto m = synth(64, 4);
    AllocView v;
    v.setModel(m);
    v.setMeasureOptions({2, 3, 4, 5, 6, 8}, 32, 0.005, true);
    v.setCalibration(2, 16);
    QVERIFY(measure(v));
    v.setBudgetKind(BudgetKind::AverageBits);
    const auto& units = v.measurement()->result.plan.units;
    QVERIFY(v.slider()->isEnabled());
    QSignalSpy changed(&v, &AllocView::allocationChanged);
    double prev_loss = INFINITY;
    uint64_t prev_bytes = 0;
    std::set<std::vector<int>> seen;
    QString prev_label;
    for (int pos : {0, 150, 300, 450, 600, 800, 1000}) {
        changed.clear();
        v.setSliderPosition(pos);
        if (pos != 0) QVERIFY(!changed.isEmpty());
        QCOMPARE(v.slider()->value(), pos);
        // The spin box follows the slider; the solve is the direct solve at that budget.
        QCOMPARE(v.budgetSpin()->value(), v.budgetValue());
        const AllocBudget b = v.budget();
        check_against_solver(v, units, b, true);
        const auto& a = *v.allocation();
        QVERIFY(a.average_bits <= b.average_bits + 1e-9);
        QVERIFY(a.loss <= prev_loss + 1e-15);  // more bits never predict more loss
        QVERIFY(a.unit_bytes >= prev_bytes || a.loss < prev_loss);
        prev_loss = a.loss;
        prev_bytes = a.unit_bytes;
        seen.insert(a.choice);
        prev_label = v.lossLabel()->text();
    }
    QVERIFY2(seen.size() >= 4, "the slider should walk through several allocations");
    // The ends: everything at the smallest width, then everything at the widest.
    v.setSliderPosition(0);
    for (size_t u = 0; u < units.size(); ++u) QCOMPARE(units[u].options[size_t(v.allocation()->choice[u])].bits, 2);
    v.setSliderPosition(1000);
    for (size_t u = 0; u < units.size(); ++u) QCOMPARE(units[u].options[size_t(v.allocation()->choice[u])].bits, 8);
    QVERIFY(v.lossLabel()->text() != QString());
    // Typing in the spin box moves the slider.
    v.budgetSpin()->setValue(v.minimumBudget());
    QCOMPARE(v.slider()->value(), 0);
}

void TestAllocView::pinIsRespected() {
    auto m = synth(64, 4);
    AllocView v;
    v.setModel(m);
    v.setMeasureOptions({2, 3, 4, 8}, 32, 0.005, true);
    v.setCalibration(2, 16);
    QVERIFY(measure(v));
    v.setBudgetKind(BudgetKind::AverageBits);
    v.setBudgetValue(5.0);
    const auto free_choice = v.allocation()->choice;
    // Pin the last unit at 8 bits through the table's edit role, and the first at the width it would not get.
    const int last = v.unitModel()->rowCount() - 1;
    QVERIFY(v.unitModel()->setData(v.unitModel()->index(last, AllocUnitModel::PinColumn), 8));
    QVERIFY(v.allocation().has_value());
    QCOMPARE(v.allocation()->choice[size_t(last)], 3);
    std::vector<AllocUnit> units = v.measurement()->result.plan.units;
    units[size_t(last)].pin = 3;
    check_against_solver(v, units, v.budget(), true);
    QCOMPARE(v.chartBits()[size_t(last)], 8.0);
    QVERIFY(free_choice[size_t(last)] != 3);  // the pin changed something
    QCOMPARE(v.unitModel()->index(last, AllocUnitModel::PinColumn).data().toString(), QString("8 bits"));
    // Unpinning restores the free optimum.
    QVERIFY(v.unitModel()->setPin(last, 0));
    QCOMPARE(v.allocation()->choice, free_choice);
}

void TestAllocView::belowMinimum_data() {
    QTest::addColumn<int>("kind");
    QTest::newRow("effective bits") << int(BudgetKind::AverageBits);
    QTest::newRow("code bits") << int(BudgetKind::AverageCodeBits);
    QTest::newRow("memory") << int(BudgetKind::TotalBytes);
}

void TestAllocView::belowMinimum() {
    QFETCH(int, kind);
    const auto k = BudgetKind(kind);
    auto m = synth();
    AllocView v;
    v.setModel(m);
    v.setMeasureOptions({3, 4, 8}, 32, 0.005, true);
    v.setCalibration(1, 16);
    v.setContext(32);
    QVERIFY(measure(v));
    v.setBudgetKind(k);
    // Pin the first unit at 8 bits: the minimum counts it at its pin.
    QVERIFY(v.unitModel()->setPin(0, 8));
    const auto& units = v.measurement()->result.plan.units;
    double cost = 0, w = 0;
    for (size_t u = 0; u < units.size(); ++u) {
        const AllocOption& o = u == 0 ? units[u].options[2] : units[u].options[0];  // widths sorted 3, 4, 8
        cost += k == BudgetKind::AverageCodeBits ? double(o.bits) * double(units[u].weights) : double(o.bytes);
        w += double(units[u].weights);
    }
    auto state = runtime_state_bytes(*m, 32);
    QVERIFY(state);
    const uint64_t fixed = v.measurement()->result.plan.kept_bytes + *state;
    const double minimum = k == BudgetKind::AverageBits ? 8.0 * cost / w : k == BudgetKind::AverageCodeBits ? cost / w : cost + double(fixed);
    QCOMPARE(v.minimumBudget(), minimum);
    // Just below: the error names the minimum; no allocation; the table shows no widths.
    v.setBudgetValue(k == BudgetKind::TotalBytes ? minimum - 1 : minimum - 0.01);
    QVERIFY(!v.allocation().has_value());
    QVERIFY(!v.errorLabel()->isHidden());
    const QString want = k == BudgetKind::TotalBytes ? grouped(qint64(minimum)) : QString::number(minimum, 'f', 3);
    QVERIFY2(v.errorLabel()->text().contains(want), qPrintable(v.errorLabel()->text() + " / want " + want));
    QVERIFY(v.errorLabel()->text().contains("below the minimum"));
    QVERIFY(!v.solveError().isEmpty());
    QCOMPARE(v.unitModel()->index(1, AllocUnitModel::BitsColumn).data().toString(), QString("—"));
    QCOMPARE(v.chartBits()[1], 0.0);
    // At the minimum it is feasible again: everything at its smallest width, the pin at 8.
    v.setBudgetValue(k == BudgetKind::TotalBytes ? minimum : std::ceil(minimum * 1000) / 1000);
    QVERIFY2(v.allocation().has_value(), qPrintable(v.solveError()));
    QVERIFY(v.errorLabel()->isHidden());
    QCOMPARE(units[0].options[size_t(v.allocation()->choice[0])].bits, 8);
}

void TestAllocView::memoryBudgetCountsState() {
    auto m = synth();
    AllocView v;
    v.setModel(m);
    v.setMeasureOptions({2, 4, 8}, 32, 0.005, true);
    v.setCalibration(1, 16);
    QVERIFY(measure(v));
    v.setContext(48);
    v.setBudgetKind(BudgetKind::TotalBytes);
    auto state = runtime_state_bytes(*m, 48);
    QVERIFY(state && *state > 0);
    QCOMPARE(v.stateBytes(), *state);
    const auto& units = v.measurement()->result.plan.units;
    uint64_t lo = 0, hi = 0;
    for (const auto& u : units) lo += u.options.front().bytes, hi += u.options.back().bytes;
    AllocBudget b;
    b.kind = BudgetKind::TotalBytes;
    b.fixed_bytes = v.measurement()->result.plan.kept_bytes + *state;
    b.total_bytes = b.fixed_bytes + (lo + hi) / 2;
    v.setBudgetValue(double(b.total_bytes));
    QCOMPARE(v.budget().total_bytes, b.total_bytes);
    QCOMPARE(v.budget().fixed_bytes, b.fixed_bytes);
    check_against_solver(v, units, b, true);
    QVERIFY(v.allocation()->total_bytes <= b.total_bytes);
    QVERIFY(v.sizeLabel()->text().contains("context 48"));
    // A longer context leaves less for the weights.
    const double loss48 = v.allocation()->loss;
    v.setContext(64);
    QVERIFY(v.stateBytes() > *state);
    QVERIFY(!v.allocation() || v.allocation()->loss >= loss48);
}

void TestAllocView::cancelKeepsPrevious() {
    auto m = synth(128, 4);
    AllocView v;
    v.setModel(m);
    v.setMeasureOptions({2, 4}, 32, 0.005, true);
    v.setCalibration(1, 16);
    QVERIFY(measure(v));
    const AllocMeasurementPtr first = v.measurement();
    v.setBudgetValue(3.0);
    const auto choice = v.allocation()->choice;
    const QString loss_text = v.lossLabel()->text();
    // A long KL measurement, cancelled at once.
    v.setMeasureOptions({2, 3, 4, 5, 6, 8}, 32, 0.005, false, true);
    v.setCalibration(16, 64);
    QSignalSpy ready(&v, &AllocView::measurementReady), cancelled(&v, &AllocView::measurementCancelled);
    QSignalSpy progressed(&v, &AllocView::progressed);
    QVERIFY(v.startMeasure());
    QVERIFY(v.busy());
    // Cancel once measure_sensitivity reports progress (it is really measuring).
    QTRY_VERIFY_WITH_TIMEOUT(!progressed.isEmpty() && progressed.last().at(1).toDouble() > 0, 60000);
    v.cancel();
    QVERIFY(wait_for(cancelled));
    QCOMPARE(ready.size(), 0);
    QVERIFY(!v.busy());
    QCOMPARE(v.measurement().get(), first.get());
    QCOMPARE(v.unitModel()->measurement(), first.get());
    QCOMPARE(v.allocation()->choice, choice);
    QCOMPARE(v.lossLabel()->text(), loss_text);
    // Bad input: no model, bad widths.
    AllocView empty;
    QSignalSpy failed(&empty, &AllocView::measurementFailed);
    QVERIFY(!empty.startMeasure());
    QCOMPARE(failed.size(), 1);
    v.setMeasureOptions({7}, 32, 0.005, true);
    QSignalSpy failed2(&v, &AllocView::measurementFailed);
    QVERIFY(!v.startMeasure());
    QCOMPARE(failed2.size(), 1);
    QVERIFY(failed2.first().at(0).toString().contains("7"));
}

void TestAllocView::quantizeAndSave() {
    auto m = synth();
    AllocView v;
    v.setModel(m);
    v.setMeasureOptions({2, 4, 8}, 32, 0.005, true);
    v.setCalibration(1, 16);
    QVERIFY(measure(v));
    v.setBudgetValue(4.5);
    QVERIFY(v.allocation().has_value());
    QSignalSpy done(&v, &AllocView::quantized), failed(&v, &AllocView::quantizeFailed);
    const std::vector<int> direct_choice = v.allocation()->choice;
    QVERIFY(v.startQuantize());
    QVERIFY(wait_for(done));
    QCOMPARE(failed.size(), 0);
    auto q = done.first().at(0).value<std::shared_ptr<const Model>>();
    QVERIFY(q);
    QCOMPARE(q.get(), v.quantizedModel().get());
    // The same model as apply_allocation makes directly with the view's measurement and choice.
    auto direct = apply_allocation(*m, v.measurement()->result, v.allocation()->choice, v.measurement()->options);
    QVERIFY2(direct, direct ? "" : direct.message().c_str());
    QCOMPARE(q->tensors.size(), direct->tensors.size());
    for (size_t i = 0; i < q->tensors.size(); ++i) {
        QCOMPARE(q->tensors[i].name, direct->tensors[i].name);
        QCOMPARE(q->tensors[i].dtype, direct->tensors[i].dtype);
        QCOMPARE(q->tensors[i].nbytes(), direct->tensors[i].nbytes());
    }
    QTemporaryDir dir;
    const QString path = dir.filePath("alloc.gguf");
    QSignalSpy saved(&v, &AllocView::saved);
    QVERIFY(v.startSave(path));
    QVERIFY(wait_for(saved));
    auto back = load_model(path.toStdString());
    QVERIFY2(back, back ? "" : back.message().c_str());
    QCOMPARE(back->tensors.size(), q->tensors.size());
    // The quantized model stands for its allocation: another solve drops it (export/save would be stale).
    v.setBudgetValue(7.0);
    QVERIFY(v.allocation().has_value());
    QVERIFY(v.allocation()->choice != direct_choice);
    QVERIFY(!v.quantizedModel());
    QVERIFY(!v.startSave(path));
}

void TestAllocView::mainWindowStories260K() {
    EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
    EF_REQUIRE_SHARED(tok, "models/tok512.bin");
    QCoreApplication::setOrganizationName("EdgeFusionTests");
    QCoreApplication::setApplicationName("test_alloc_view");
    MainWindow w;
    w.resize(1480, 980);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QSignalSpy loaded(&w, &MainWindow::modelLoaded);
    w.openFile(stories);
    QVERIFY(loaded.wait(60000));
    QVERIFY(w.allocDock());
    w.allocDock()->show();
    w.allocDock()->raise();
    AllocView* v = w.allocView();
    v->setMeasureOptions({2, 3, 4, 5, 6, 8}, 32, 0.005, true);
    v->setCalibration(4, 128);
    QVERIFY(measure(*v));
    const auto& units = v->measurement()->result.plan.units;
    QCOMPARE(units.size(), size_t(w.model()->config.n_layers));
    v->setBudgetKind(BudgetKind::AverageBits);
    v->setBudgetValue(4.0);
    AllocBudget b;
    b.average_bits = 4.0;
    check_against_solver(*v, units, b, true);
    QVERIFY(v->allocation()->average_bits <= 4.0);
    // Pin the first layer at 8 bits: still feasible at 5.5, and respected.
    QVERIFY(v->unitModel()->setPin(0, 8));
    v->setBudgetValue(5.5);
    QVERIFY2(v->allocation().has_value(), qPrintable(v->solveError()));
    QCOMPARE(units[0].options[size_t(v->allocation()->choice[0])].bits, 8);
    v->unitTable()->selectRow(1);
    QTest::qWait(80);
    save_and_check(w, "alloc_view_stories260K.png");
    save_and_check(*w.allocDock(), "alloc_dock_stories260K.png");
    // Quantize, then Export…: the main window opens Quantize & Export with that model as its source.
    QSignalSpy done(v, &AllocView::quantized);
    QVERIFY(v->startQuantize());
    QVERIFY(wait_for(done));
    QVERIFY(v->quantizedModel());
    emit v->exportRequested();
    QVERIFY(w.quantizeDialog());
    QCOMPARE(w.quantizeDialog()->sourceModel().get(), v->quantizedModel().get());
    w.quantizeDialog()->close();
}

QTEST_MAIN(TestAllocView)
#include "test_alloc_view.moc"
