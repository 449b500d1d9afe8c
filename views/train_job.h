// One training run on a worker thread, for the Training and Lambda docks: run_training
// (core/train/trainer.h) or one lambda point of the trade-off curve (core/train/lambda_sweep.h's
// train_lambda_point: a short gate training, evaluated). The trainer's callbacks run on the worker; each becomes a signal of this object
// (which lives on the UI thread), so receivers get them queued, in order, before `finished`.
// cancel() sets the run's ef::Progress flag: the trainer stops before its next step and saves a
// checkpoint that a resumed run continues from.
#pragma once
#include <QFuture>
#include <QObject>
#include <QString>
#include <functional>
#include <memory>
#include <optional>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "core/train/lambda_sweep.h"
#include "core/train/trainer.h"
#include "runtime/router_analysis.h"

namespace ef::views {

struct TrainJobResult {
    bool ok = false;
    bool cancelled = false;       // stopped by cancel() (a checkpoint to resume from was saved)
    QString message;              // the error (or the cancel note) when !ok
    train::TrainSummary summary;  // when ok (start)
    std::optional<train::LambdaPoint> point;  // when ok (startLambda)
    // With TrainJobOptions::load_final (always for startLambda): the final checkpoint's model as the
    // loaders read it, and its router.
    std::shared_ptr<const Model> model;
    std::optional<RouterAnalysis> analysis;
};
using TrainJobResultPtr = std::shared_ptr<const TrainJobResult>;

struct TrainJobOptions {
    bool load_final = false;
    // Runs on the worker before training (e.g. writes the base model to disk); an error ends the job.
    std::function<Status(Progress&)> before;
};

class TrainJob : public QObject {
    Q_OBJECT
public:
    explicit TrainJob(QObject* parent = nullptr);
    ~TrainJob() override;  // cancels the run and waits for it

    // False (nothing started) while a run is in flight. opts.on_log / on_message are replaced.
    bool start(const train::TrainConfig& config, train::TrainOptions opts, TrainJobOptions job = {});
    // One lambda of the curve; opts.on_log / on_message are replaced.
    bool startLambda(const train::TrainConfig& config, float lambda, train::LambdaSweepOptions opts, TrainJobOptions job = {});
    void cancel();
    bool isRunning() const { return running_; }
    bool isCancelling() const { return running_ && progress_ && progress_->cancelled(); }
    // Blocks until the worker has returned (its signals may still be queued).
    void waitForWorker();

signals:
    void logged(const ef::train::TrainLogEntry& entry);
    void messageLine(const QString& line);
    void progressed(double fraction, const QString& stage);
    void finished(ef::views::TrainJobResultPtr result);
    // Internal: the worker's last word, turned into `finished` on the UI thread.
    void workerDone(ef::views::TrainJobResultPtr result);

private:
    // Runs `work` on the worker; it fills the result (ok, message, summary or point, final checkpoint).
    using Work = std::function<void(TrainJobResult&, std::string& final_checkpoint, Progress&)>;
    bool launch(Work work, TrainJobOptions job);

    bool running_ = false;
    std::shared_ptr<Progress> progress_;
    QFuture<void> future_;
};

}  // namespace ef::views

Q_DECLARE_METATYPE(ef::train::TrainLogEntry)
Q_DECLARE_METATYPE(ef::views::TrainJobResultPtr)
