// Resumable training checkpoints. One folder per checkpoint, written whole or not at all (built
// under a temporary name, then renamed into place):
//   DIR/checkpoint_<step>/ and DIR/checkpoint_final/
//     model.h5        the trained model (our HDF5 checkpoint, F32; every loader and `edgefusion
//                     inspect` read it)
//     train_state.h5  what resuming needs beside the weights:
//                       root attributes  format_version 1, step (optimizer steps done), adam_t,
//                                        batches_drawn (data cursor), rng_state (str: the batch
//                                        sampler's generator), config (str: the YAML text)
//                       /m, /v           one f32 dataset per optimized parameter (the AdamW
//                                        moments), named like the parameter, in optimizer order
//                                        (attribute "order" on each: its index)
//     config.yaml     the config the run used (for people; the state file has it too)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"

namespace ef::train {

struct TrainState {
    int64_t step = 0;  // optimizer steps done
    int64_t adam_t = 0;
    int64_t batches_drawn = 0;
    std::string rng_state;
    std::string config_text;
    std::vector<std::string> names;            // optimized parameters, optimizer order
    std::vector<std::vector<float>> m, v;      // AdamW moments, same order
};

// Writes DIR/<name>/ (name "checkpoint_<step>" or "checkpoint_final") atomically; an existing
// folder of that name is replaced.
Status save_train_checkpoint(const std::string& dir, const std::string& name, const Model& model, const TrainState& state,
                             Progress& progress = Progress::none());

struct LoadedCheckpoint {
    Model model;
    TrainState state;
};
// Reads a checkpoint folder; moment sizes are checked against the model's tensors of that name.
Result<LoadedCheckpoint> load_train_checkpoint(const std::string& checkpoint_dir, Progress& progress = Progress::none());

// The checkpoint to resume from in an output folder: checkpoint_final if present, else the
// checkpoint_<step> with the largest step; empty when there is none.
std::string latest_checkpoint(const std::string& output_dir);

}  // namespace ef::train
