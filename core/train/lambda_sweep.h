// The lambda trade-off curve (issue 5, `edgefusion sweep-lambda`, the GUI's lambda slider): for
// each lambda a short gate training from the same starting model with the base frozen (only router
// gates and SSM branches train; run_training with the config's seed, so every run sees the same
// initialisation and the same batches), then per lambda:
//   - ssm_frac and mean gate entropy (bits) of the trained gates (runtime/router_analysis.h),
//   - GFLOPs/token of the hard-routed result and of its dense twin (runtime/profile.h's count),
//   - on held-out windows (the config text's validation split, tokenized with the model's
//     vocabulary, as the trainer splits it): the hard-routed result's perplexity and its mean
//     KL(reference || result), where the reference is the starting model as the runtime runs it
//     (a dense base: the teacher itself; an edgefusion base: soft routing, the mix it trained as).
// Every run writes its own folder OUT/lambda_<value>/ (checkpoint_final, train_log.jsonl).
// The base may be a trained edgefusion checkpoint with the very config that trained it: the shape
// keys are then not used (the base has the shape), and its router temperature stays fixed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"
#include "core/result.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"

namespace ef::train {

struct LambdaPoint {
    float lambda = 0;
    std::string run_dir, checkpoint;  // OUT/lambda_<v>/ and its checkpoint_final/
    int64_t steps = 0;
    double final_loss = 0, task_loss = 0;  // the last logged step
    std::vector<float> gates;              // per layer g (attention share) of the result
    double ssm_frac = 0;                   // layers with g < 0.5
    double gate_entropy_bits = 0;          // mean over layers
    double mean_gate = 0;                  // mean g
    double val_ppl = 0;                    // hard-routed result on the held-out windows
    double kl = 0;                         // mean KL(reference || hard-routed result), nats per position
    double gflops_per_token = 0;           // hard-routed, at context_length / 2
    double dense_gflops_per_token = 0;     // every layer on attention
    double flops_reduction_pct = 0;
};

struct LambdaSweepOptions {
    std::string output_dir;      // runs go to output_dir/lambda_<value>/
    std::string base_model;      // overrides model.base (a model file or a checkpoint folder); one is required
    int64_t steps = 0;           // steps per run (0: training.steps of the config)
    int threads = 0;             // 0: training.threads
    int64_t eval_windows = 8;    // held-out windows of data.seq_len + 1 tokens for perplexity and KL
    // Both run on the calling thread: a point when its run is done and evaluated; human-readable lines.
    std::function<void(const LambdaPoint&)> on_point;
    std::function<void(const std::string&)> on_message;
    std::function<void(float lambda, const TrainLogEntry&)> on_log;  // the runs' training log lines
};

struct LambdaSweep {
    std::string config_path, base_model, reference;  // reference: what KL is measured against
    int64_t eval_positions = 0;                      // scored held-out positions per point
    double reference_ppl = 0;                        // the reference model's perplexity on them
    std::vector<LambdaPoint> points;                 // in the order of the lambdas given
};

// "0,0.001,0.01,0.1" -> lambdas. Errors: empty list or item, not a number, negative, not finite,
// a value given twice.
Result<std::vector<float>> parse_lambda_list(std::string_view text);

// The whole sweep. Progress covers all runs; cancelling stops the current run (its folder keeps a
// resumable checkpoint) and returns an error. Errors: no base model, a bad lambda list, anything
// run_training reports (named with the lambda).
Result<LambdaSweep> sweep_lambda(const TrainConfig& config, const std::vector<float>& lambdas, const LambdaSweepOptions& opts,
                                 Progress& progress = Progress::none());
// One point (the GUI's lambda slider): the same as a sweep of one lambda.
Result<LambdaPoint> train_lambda_point(const TrainConfig& config, float lambda, const LambdaSweepOptions& opts,
                                       Progress& progress = Progress::none());

// A gate re-training config for a model and a text without a YAML file (the GUI's slider): the
// base model, data.train_text = text (validation split 10%), seq_len 64, batch 4, 50 steps at
// lr 0.01 (warmup 5, no weight decay), KL to the base when `distill` (a dense llama base only).
Result<TrainConfig> gate_training_config(const std::string& base_model, const std::string& text_path, bool distill = false,
                                         const std::string& tokenizer = {});

// The folder name of a lambda's run: "lambda_0.001" (shortest round-tripping decimal).
std::string lambda_dir_name(float lambda);

// The table: Markdown (for people), CSV (one header row, one row per lambda; gates ';'-joined),
// JSON ({"config", "base_model", "reference", "eval_positions", "reference_ppl", "points": [...]}).
std::string sweep_markdown(const LambdaSweep& s);
std::string sweep_csv(const LambdaSweep& s);
std::string sweep_json(const LambdaSweep& s);

}  // namespace ef::train
