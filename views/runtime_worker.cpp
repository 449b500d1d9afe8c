#include "views/runtime_worker.h"

#include <QtConcurrent>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "runtime/eval/perplexity.h"

namespace ef::views {

namespace {
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence: a byte-fallback
// token can carry one byte of a multi-byte character, and a QString made from half a character is
// a replacement character forever.
size_t complete_utf8_prefix(const std::string& s) {
    const size_t n = s.size();
    for (size_t back = 1; back <= 4 && back <= n; ++back) {
        const auto c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
        const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? n - back : n;
    }
    return n;  // not UTF-8 at all: pass it on
}

// Per-token milliseconds from seconds summed over `evals` evals.
double per_token_ms(double seconds, int64_t evals) { return evals > 0 ? 1e3 * seconds / double(evals) : 0.0; }
}  // namespace

RuntimeWorker::RuntimeWorker(QObject* parent) : QObject(parent) {
    qRegisterMetaType<GenerateSummary>();
    qRegisterMetaType<ProfileReport>();
    qRegisterMetaType<PerplexitySummary>();
    qRegisterMetaType<std::shared_ptr<const Tokenizer>>();
    pool_.setMaxThreadCount(1);
    aux_pool_.setMaxThreadCount(1);
    // Connected before anyone else's slots, so listeners already see isBusy() == false.
    connect(this, &RuntimeWorker::generateFinished, this, [this](quint64 j) { finish(j); }, Qt::QueuedConnection);
    connect(this, &RuntimeWorker::profileFinished, this, [this](quint64 j) { finish(j); }, Qt::QueuedConnection);
    connect(this, &RuntimeWorker::perplexityFinished, this, [this](quint64 j) { finish(j); }, Qt::QueuedConnection);
    connect(this, &RuntimeWorker::failed, this, [this](quint64 j) { finish(j); }, Qt::QueuedConnection);
    connect(this, &RuntimeWorker::cancelled, this, [this](quint64 j) { finish(j); }, Qt::QueuedConnection);
}

RuntimeWorker::~RuntimeWorker() {
    if (progress_) progress_->cancel();
    pool_.waitForDone();  // jobs emit on `this`
    aux_pool_.waitForDone();
}

quint64 RuntimeWorker::begin() {
    if (progress_) progress_->cancel();
    running_ = ++next_id_;
    // Forward whole-percent changes only: the event queue stays small however often jobs report.
    progress_ = std::make_shared<Progress>([this, job = running_, last = std::make_shared<int>(-1)](double f, const std::string& s) {
        const int pct = int(f * 100);
        if (pct == *last) return;
        *last = pct;
        emit progress(job, f, QString::fromStdString(s));
    });
    return running_;
}

void RuntimeWorker::finish(quint64 job) {
    if (job == running_) running_ = 0;
}

void RuntimeWorker::cancel() {
    if (progress_) progress_->cancel();
}

void RuntimeWorker::prepareTokenizer(std::shared_ptr<const Model> model, quint64 request) {
    (void)QtConcurrent::run(&aux_pool_, [this, model, request] {
        if (model->vocab.empty()) return emit tokenizerReady(request, nullptr, tr("the model has no tokenizer"));
        auto t = Tokenizer::create(model->vocab);
        if (!t) return emit tokenizerReady(request, nullptr, QString::fromStdString(t.message()));
        emit tokenizerReady(request, std::make_shared<const Tokenizer>(std::move(t).value()), QString());
    });
}

quint64 RuntimeWorker::startGenerate(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tok,
                                     const QString& prompt, const GenerateOptions& opts, const SessionOptions& so) {
    const quint64 job = begin();
    (void)QtConcurrent::run(&pool_, [this, job, model, tok, p = progress_, text = prompt.toStdString(), opts, so] {
        auto session = Session::create(*model, so);
        if (!session) return emit failed(job, QString::fromStdString(session.message()));
        const auto t0 = Clock::now();
        std::string pending;
        int n = 0;
        auto r = generate(*session, *tok, text, opts, [&](int32_t, const std::string& piece) {
            pending += piece;
            ++n;
            const size_t cut = complete_utf8_prefix(pending);
            emit tokenGenerated(job, QByteArray(pending.data(), qsizetype(cut)), n, since(t0));
            pending.erase(0, cut);
            return !p->cancelled();
        }, *p);
        if (!r) return emit failed(job, QString::fromStdString(r.message()));
        if (!pending.empty()) emit tokenGenerated(job, QByteArray(pending.data(), qsizetype(pending.size())), n, since(t0));
        GenerateSummary s;
        s.text = r->text;
        s.prompt_tokens = int(r->prompt_tokens.size());
        s.tokens = int(r->tokens.size());
        s.prefill_seconds = r->prefill_seconds;
        s.decode_seconds = r->decode_seconds;
        // A Stop seen by the callback (Callback) or by generate's own check (Cancelled) is one thing to the user.
        s.stop = p->cancelled() ? QStringLiteral("stopped") : QString::fromUtf8(stop_reason_name(r->stop).data());
        s.peak_rss = peak_rss_bytes();
        emit generateFinished(job, s);
    });
    return job;
}

quint64 RuntimeWorker::startProfile(std::shared_ptr<const Model> model, int pp, int tg, int reps, const SessionOptions& so) {
    const quint64 job = begin();
    (void)QtConcurrent::run(&pool_, [this, job, model, pp, tg, reps, so, p = progress_] {
        auto session = Session::create(*model, so);
        if (!session) return emit failed(job, QString::fromStdString(session.message()));
        ProfileReport rep;
        // Sub-progress: prefill is the first half of the bar, decode the second. The benches poll
        // their own Progress once per repetition, so a Stop is passed on there.
        Progress* pre_ptr = nullptr;
        Progress* dec_ptr = nullptr;
        Progress pre([&](double f, const std::string&) {
            p->report(0.5 * f, "prefill");
            if (p->cancelled()) pre_ptr->cancel();
        });
        Progress dec([&](double f, const std::string&) {
            p->report(0.5 + 0.5 * f, "decode");
            if (p->cancelled()) dec_ptr->cancel();
        });
        pre_ptr = &pre;
        dec_ptr = &dec;
        auto ps = bench_prefill(*session, pp, reps, 1, pre);
        if (p->cancelled()) return emit cancelled(job);
        if (!ps) return emit failed(job, QString::fromStdString(ps.message()));
        rep.prefill = *ps;

        SessionTimings timings;
        session->set_timings(&timings);
        auto ds = bench_decode(*session, tg, reps, 2, dec);
        session->set_timings(nullptr);
        if (p->cancelled()) return emit cancelled(job);
        if (!ds) return emit failed(job, QString::fromStdString(ds.message()));
        rep.decode = *ds;

        const Model& m = *model;
        const auto path = layer_paths(*session, so.routing);
        rep.peak_rss = peak_rss_bytes();
        rep.weight_bytes = m.weight_bytes();
        rep.n_ctx = session->max_positions();
        rep.kv_bytes = kv_cache_bytes(m, path, rep.n_ctx);
        rep.ssm_bytes = ssm_state_bytes(m, path);
        rep.gflops_per_token = flops_per_token(m, path, tg / 2) * 1e-9;
        for (size_t il = 0; il < path.size() && il < m.layers.size(); ++il) {
            const bool ssm = path[il].ssm != MixerKind::Attention;
            if (m.layers[il].mixer != MixerKind::Routed)
                rep.branch.push_back(ssm ? LayerBranch::Mamba : LayerBranch::Attention);
            else if (path[il].attention && ssm)
                rep.branch.push_back(LayerBranch::RoutedBoth);
            else
                rep.branch.push_back(ssm ? LayerBranch::RoutedSsm : LayerBranch::RoutedAttention);
        }
        for (double s : timings.layer_s) rep.layer_ms.push_back(per_token_ms(s, timings.evals));
        rep.embed_ms = per_token_ms(timings.embed_s, timings.evals);
        rep.attention_ms = per_token_ms(timings.attention_s, timings.evals);
        rep.mamba_ms = per_token_ms(timings.mamba1_s + timings.mamba2_s, timings.evals);
        rep.ffn_ms = per_token_ms(timings.ffn_s, timings.evals);
        rep.output_ms = per_token_ms(timings.output_s, timings.evals);
        emit profileFinished(job, rep);
    });
    return job;
}

quint64 RuntimeWorker::startPerplexity(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tok,
                                       const QString& text_file, int n_ctx, int max_chunks, const SessionOptions& so) {
    const quint64 job = begin();
    (void)QtConcurrent::run(&pool_, [this, job, model, tok, file = text_file.toStdString(), n_ctx, max_chunks,
                                     so = SessionOptions(so), p = progress_]() mutable {
        const auto t0 = Clock::now();
        std::ifstream in(file, std::ios::binary);
        if (!in) return emit failed(job, tr("cannot open the text file %1").arg(QString::fromStdString(file)));
        std::ostringstream ss;
        ss << in.rdbuf();
        const std::string text = ss.str();
        eval::PerplexityOptions opts;
        opts.n_ctx = n_ctx;
        opts.max_chunks = max_chunks;
        opts.session = so;
        opts.on_chunk = [&](int c, int n, double cumulative, double own) { emit chunkDone(job, c, n, cumulative, own); };
        auto r = eval::perplexity(*model, *tok, text, opts, *p);
        if (!r) {
            if (p->cancelled()) return emit cancelled(job);
            return emit failed(job, QString::fromStdString(r.message()));
        }
        PerplexitySummary sum;
        sum.cumulative_ppl = r->cumulative_ppl;
        sum.n_ctx = r->n_ctx;
        sum.n_chunks = r->n_chunks;
        sum.count = r->count;
        sum.n_text_tokens = r->n_text_tokens;
        sum.ppl = r->ppl;
        sum.ppl_error = r->ppl_error;
        sum.seconds = since(t0);
        emit perplexityFinished(job, sum);
    });
    return job;
}

}  // namespace ef::views
