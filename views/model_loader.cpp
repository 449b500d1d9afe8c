#include "views/model_loader.h"

#include <QtConcurrent>

#include "core/formats/format.h"

namespace ef::views {

ModelLoader::ModelLoader(QObject* parent) : QObject(parent) {
    qRegisterMetaType<std::shared_ptr<const ef::Model>>();
    // Two workers: a cancelled load that is slow to notice does not hold up the next one.
    pool_.setMaxThreadCount(2);
    connect(this, &ModelLoader::workerDone, this, &ModelLoader::onDone, Qt::QueuedConnection);
    connect(this, &ModelLoader::workerProgress, this, [this](quint64 gen, double f, const QString& stage) {
        if (gen == generation_ && loading_) emit progress(f, stage);
    }, Qt::QueuedConnection);
}

ModelLoader::~ModelLoader() {
    if (progress_) progress_->cancel();
    pool_.waitForDone();  // workers emit on `this`
}

void ModelLoader::start(const QString& path, const QString& tokenizer) {
    if (loading_) cancel();
    const quint64 gen = ++generation_;
    loading_ = true;
    path_ = path;
    // Report only whole-percent changes: the event queue stays small however often the loader reports.
    progress_ = std::make_shared<Progress>([this, gen, last = std::make_shared<int>(-1)](double f, const std::string& s) {
        const int pct = int(f * 100);
        if (pct != *last) {
            *last = pct;
            emit workerProgress(gen, f, QString::fromStdString(s));
        }
    });
    LoadOptions opts;
    opts.tokenizer_path = tokenizer.toStdString();
    future_ = QtConcurrent::run(&pool_, [this, gen, p = progress_, file = path.toStdString(), opts] {
        auto r = load_model(file, opts, *p);
        // A cancel that came too late for the loader to notice still discards the result.
        if (p->cancelled()) return emit workerDone(gen, nullptr, QString(), true);
        if (!r) return emit workerDone(gen, nullptr, QString::fromStdString(r.message()), false);
        emit workerDone(gen, std::make_shared<const Model>(std::move(r).value()), QString(), false);
    });
}

void ModelLoader::cancel() {
    if (!loading_) return;
    if (progress_) progress_->cancel();
    // Answer at once; the worker's late result is dropped by the generation check.
    loading_ = false;
    ++generation_;
    emit cancelled(path_);
}

void ModelLoader::onDone(quint64 generation, const std::shared_ptr<const ef::Model>& model, const QString& error,
                         bool was_cancelled) {
    if (generation != generation_ || !loading_) return;
    loading_ = false;
    if (was_cancelled) emit cancelled(path_);
    else if (!error.isEmpty() || !model) emit failed(path_, error.isEmpty() ? tr("unknown error") : error);
    else emit loaded(path_, model);
}

}  // namespace ef::views
