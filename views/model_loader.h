// Loads a checkpoint on a worker thread (ef::load_model) and hands the model back by a queued
// signal. Progress is forwarded at most ~100 times per load; cancel() sets the job's Progress flag,
// and a cancelled or superseded load never delivers a model.
#pragma once
#include <QFuture>
#include <QObject>
#include <QThreadPool>
#include <memory>

#include "core/model.h"
#include "core/progress.h"

Q_DECLARE_METATYPE(std::shared_ptr<const ef::Model>)

namespace ef::views {

class ModelLoader : public QObject {
    Q_OBJECT
public:
    explicit ModelLoader(QObject* parent = nullptr);
    ~ModelLoader() override;

    // Starts loading `path`; a load already running is cancelled. `tokenizer` is for llama2.c.
    void start(const QString& path, const QString& tokenizer = {});
    void cancel();
    bool isLoading() const { return loading_; }
    const QString& currentPath() const { return path_; }

signals:
    void progress(double fraction, QString stage);
    void loaded(QString path, std::shared_ptr<const ef::Model> model);
    void failed(QString path, QString message);
    void cancelled(QString path);
    // Worker -> UI (queued), tagged with the load generation.
    void workerProgress(quint64 generation, double fraction, QString stage);
    void workerDone(quint64 generation, std::shared_ptr<const ef::Model> model, QString error, bool cancelled);

private:
    void onDone(quint64 generation, const std::shared_ptr<const ef::Model>& model, const QString& error, bool was_cancelled);

    quint64 generation_ = 0;
    bool loading_ = false;
    QString path_;
    std::shared_ptr<Progress> progress_;
    QFuture<void> future_;
    QThreadPool pool_;
};

}  // namespace ef::views
