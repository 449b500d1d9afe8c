#include "views/train_job.h"

#include <QtConcurrent/QtConcurrentRun>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/train/checkpoint_path.h"

namespace ef::views {

TrainJob::TrainJob(QObject* parent) : QObject(parent) {
    qRegisterMetaType<ef::train::TrainLogEntry>();
    qRegisterMetaType<ef::views::TrainJobResultPtr>();
    // Emitted on the worker, received here: queued, so `running_` changes on the UI thread only.
    connect(this, &TrainJob::workerDone, this, [this](TrainJobResultPtr r) {
        running_ = false;
        emit finished(std::move(r));
    }, Qt::QueuedConnection);
}

TrainJob::~TrainJob() {
    cancel();
    waitForWorker();
}

void TrainJob::cancel() {
    if (running_ && progress_) progress_->cancel();
}

void TrainJob::waitForWorker() {
    if (future_.isValid()) future_.waitForFinished();
}

bool TrainJob::start(const train::TrainConfig& config, train::TrainOptions opts, TrainJobOptions job) {
    opts.on_log = [this](const train::TrainLogEntry& e) { emit logged(e); };
    opts.on_message = [this](const std::string& s) { emit messageLine(QString::fromStdString(s)); };
    return launch([config, opts = std::move(opts)](TrainJobResult& r, std::string& final_checkpoint, Progress& p) {
        auto s = train::run_training(config, opts, p);
        if (!s) {
            r.message = QString::fromStdString(s.message());
            return;
        }
        r.ok = true;
        r.summary = std::move(*s);
        final_checkpoint = r.summary.final_checkpoint;
    }, std::move(job));
}

bool TrainJob::startLambda(const train::TrainConfig& config, float lambda, train::LambdaSweepOptions opts, TrainJobOptions job) {
    opts.on_log = [this](float, const train::TrainLogEntry& e) { emit logged(e); };
    opts.on_message = [this](const std::string& s) { emit messageLine(QString::fromStdString(s)); };
    opts.on_point = nullptr;
    job.load_final = true;
    return launch([config, lambda, opts = std::move(opts)](TrainJobResult& r, std::string& final_checkpoint, Progress& p) {
        auto pt = train::train_lambda_point(config, lambda, opts, p);
        if (!pt) {
            r.message = QString::fromStdString(pt.message());
            return;
        }
        r.ok = true;
        final_checkpoint = pt->checkpoint;
        r.point = std::move(*pt);
    }, std::move(job));
}

bool TrainJob::launch(Work work, TrainJobOptions job) {
    if (running_) return false;
    waitForWorker();  // a previous worker has emitted workerDone; let it return
    running_ = true;
    progress_ = std::make_shared<Progress>([this](double f, const std::string& stage) {
        emit progressed(f, QString::fromStdString(stage));
    });
    std::shared_ptr<Progress> progress = progress_;
    future_ = QtConcurrent::run([this, work = std::move(work), job = std::move(job), progress] {
        auto r = std::make_shared<TrainJobResult>();
        register_hdf5_format();
        std::string final_checkpoint;
        if (Status pre = job.before ? job.before(*progress) : Status::success(); !pre.ok())
            r->message = QString::fromStdString(pre.message());
        else
            work(*r, final_checkpoint, *progress);
        r->cancelled = !r->ok && progress->cancelled();
        if (r->ok && job.load_final && !final_checkpoint.empty()) {
            auto file = train::resolve_model_path(final_checkpoint);
            auto m = file ? load_model(*file) : Result<Model>(file.error());
            if (!m) {
                r->ok = false;
                r->message = QString::fromStdString(m.message());
            } else {
                if (m->architecture == "edgefusion")
                    if (auto a = analyze_router(*m)) r->analysis = std::move(*a);
                r->model = std::make_shared<const Model>(std::move(*m));
            }
        }
        emit workerDone(std::move(r));
    });
    return true;
}

}  // namespace ef::views
