// Progress and cancellation for long jobs. Shared by CLI (prints) and GUI (progress bar):
// the job reports fractions and polls cancelled(); it never blocks on the sink.
#pragma once
#include <atomic>
#include <functional>
#include <string>

namespace ef {

class Progress {
public:
    using Callback = std::function<void(double fraction, const std::string& stage)>;

    Progress() = default;
    explicit Progress(Callback cb) : cb_(std::move(cb)) {}

    void report(double fraction, const std::string& stage = {}) const {
        if (cb_) cb_(fraction, stage);
    }
    void cancel() { cancelled_.store(true); }
    bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

    // A Progress that does nothing and is never cancelled.
    static Progress& none() {
        static Progress p;
        return p;
    }

private:
    Callback cb_;
    std::atomic<bool> cancelled_{false};
};

}  // namespace ef
