// The training loop of `edgefusion train` (issue 5): builds the model (from scratch with a BPE
// vocabulary trained on the text, by hybridizing a dense base model, or from a checkpoint to resume),
// tokenizes the data, then per optimizer step: B x grad_accum windows through forward/backward
// (LM cross-entropy, or KL to the base model's logits when distilling, plus lambda * sum of gates),
// global-norm clipping, AdamW at the cosine schedule's rate, the router temperature annealed. Every
// log_every steps a TrainLogEntry goes to the callback and to DIR/train_log.jsonl; checkpoints go to
// DIR/checkpoint_<step> and DIR/checkpoint_final (core/train/train_checkpoint.h). Progress and
// cancel through ef::Progress; a cancelled run saves a checkpoint it can resume from.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/result.h"
#include "core/train/train_config.h"

namespace ef::train {

struct TrainLogEntry {
    int64_t step = 0, total_steps = 0;  // step: optimizer steps done
    double loss = 0, task_loss = 0, router_loss = 0;
    double val_loss = -1;               // < 0: not evaluated at this step
    double grad_norm = 0;               // before clipping
    float lr = 0, tau = 1;
    double ssm_frac = 0;                // layers with g < 0.5
    double gate_entropy_bits = 0;       // mean over layers of H(g) in bits
    std::vector<float> gates;           // per layer g (attention share)
    double tokens_per_s = 0;
    std::string to_json() const;       // one JSONL line (no newline)
};

struct TrainOptions {
    std::string output_dir;
    std::string base_model;   // overrides model.base
    bool dry_run = false;     // check config, data, shapes; print the memory estimate; no training
    bool debug = false;       // 100 steps
    bool freeze_base = false; // only router gates and SSM branches train
    bool skip_quantization = false;
    bool resume = false;      // continue from the latest checkpoint in output_dir
    int threads = 0;          // 0: training.threads
    // Both callbacks run on the thread that called run_training (a GUI hands them to its own thread).
    std::function<void(const TrainLogEntry&)> on_log;
    std::function<void(const std::string&)> on_message;  // human-readable lines (plan, estimate, saves)
};

struct TrainSummary {
    std::string plan;              // what would be / was trained, with the memory estimate
    MemoryEstimate memory;
    int64_t data_tokens = 0, train_tokens = 0, val_tokens = 0;
    int64_t steps_done = 0;
    std::vector<TrainLogEntry> log;
    std::string final_checkpoint;  // DIR/checkpoint_final (empty for a dry run)
    std::string quantized_model;   // DIR/checkpoint_quantized/model.* (empty when skipped)
};

Result<TrainSummary> run_training(const TrainConfig& config, const TrainOptions& opts, Progress& progress = Progress::none());

// Router statistics of per-layer gates g (attention share).
double ssm_fraction(const std::vector<float>& gates);       // share of layers with g < 0.5
double mean_gate_entropy_bits(const std::vector<float>& gates);

}  // namespace ef::train
