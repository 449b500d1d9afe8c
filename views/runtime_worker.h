// Runs the runtime's long jobs (generation, profiling, perplexity) on a worker thread and hands
// everything back by queued signals tagged with the job's id. One job at a time; cancel() sets the
// job's ef::Progress flag, which generate / bench / the perplexity loop poll, and the job then ends
// with its partial result (generation) or `cancelled`. The jobs hold the model by shared_ptr, so a
// model replaced in the window stays alive until its job has returned.
#pragma once
#include <QObject>
#include <QThreadPool>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "runtime/generate.h"
#include "runtime/profile.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef::views {

struct GenerateSummary {
    std::string text;  // the generated pieces, as ef::generate returns them
    int prompt_tokens = 0, tokens = 0;
    double prefill_seconds = 0, decode_seconds = 0;
    QString stop;  // stop_reason_name
    uint64_t peak_rss = 0;
};

// What the profile tab shows. Per-layer decode time comes from Session::set_timings.
enum class LayerBranch : uint8_t { Attention, Mamba, RoutedAttention, RoutedSsm, RoutedBoth };
struct ProfileReport {
    SpeedStats prefill, decode;
    uint64_t peak_rss = 0, weight_bytes = 0, kv_bytes = 0, ssm_bytes = 0;
    int64_t n_ctx = 0;
    double gflops_per_token = 0;  // at position tg / 2
    std::vector<LayerBranch> branch;  // (n_layers)
    std::vector<double> layer_ms;     // (n_layers) decode milliseconds per token
    double embed_ms = 0, attention_ms = 0, mamba_ms = 0, ffn_ms = 0, output_ms = 0;  // per token, by op kind
};

struct PerplexitySummary {
    double ppl = 0, ppl_error = 0;
    int n_chunks = 0, n_ctx = 0;
    int64_t count = 0, n_text_tokens = 0;
    std::vector<double> cumulative_ppl;
    double seconds = 0;
};

class RuntimeWorker : public QObject {
    Q_OBJECT
public:
    explicit RuntimeWorker(QObject* parent = nullptr);
    ~RuntimeWorker() override;  // cancels and waits for the running job

    // Each returns the new job's id. A job still running is cancelled first.
    quint64 startGenerate(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tok, const QString& prompt,
                          const GenerateOptions& opts, const SessionOptions& session);
    quint64 startProfile(std::shared_ptr<const Model> model, int pp, int tg, int reps, const SessionOptions& session);
    quint64 startPerplexity(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tok,
                            const QString& text_file, int n_ctx, int max_chunks, const SessionOptions& session);
    void cancel();
    bool isBusy() const { return running_ != 0; }
    quint64 currentJob() const { return running_; }

    // Builds the tokenizer of `model`'s vocabulary off the UI thread; answers with tokenizerReady
    // carrying the caller's `request` tag.
    void prepareTokenizer(std::shared_ptr<const Model> model, quint64 request);

signals:
    void progress(quint64 job, double fraction, QString stage);
    // A generated piece: complete UTF-8 only (a character split over tokens waits for its end);
    // n = tokens so far, seconds since the job started.
    void tokenGenerated(quint64 job, QByteArray piece, int n, double seconds);
    void generateFinished(quint64 job, ef::views::GenerateSummary summary);
    void profileFinished(quint64 job, ef::views::ProfileReport report);
    void chunkDone(quint64 job, int chunk, int n_chunks, double running_ppl, double chunk_ppl);
    void perplexityFinished(quint64 job, ef::views::PerplexitySummary summary);
    void failed(quint64 job, QString message);
    void cancelled(quint64 job);
    void tokenizerReady(quint64 request, std::shared_ptr<const ef::Tokenizer> tok, QString error);

private:
    quint64 begin();
    void finish(quint64 job);

    quint64 next_id_ = 0;
    quint64 running_ = 0;
    std::shared_ptr<Progress> progress_;
    QThreadPool pool_;       // one thread: jobs run one after the other
    QThreadPool aux_pool_;   // tokenizer preparation
};

}  // namespace ef::views

Q_DECLARE_METATYPE(ef::views::GenerateSummary)
Q_DECLARE_METATYPE(ef::views::ProfileReport)
Q_DECLARE_METATYPE(ef::views::PerplexitySummary)
Q_DECLARE_METATYPE(std::shared_ptr<const ef::Tokenizer>)
