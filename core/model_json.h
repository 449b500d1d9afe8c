// JSON forms of the model description, used where a format has no native place for it (HDF5
// attributes, safetensors __metadata__) and by `edgefusion inspect --json`.
#pragma once
#include <nlohmann/json.hpp>

#include "core/model.h"

namespace ef {

nlohmann::json config_to_json(const ModelConfig& cfg);
Result<ModelConfig> config_from_json(const nlohmann::json& j);  // unknown keys are an error

nlohmann::json layers_to_json(const std::vector<LayerDesc>& layers);
Result<std::vector<LayerDesc>> layers_from_json(const nlohmann::json& j);

nlohmann::json vocab_to_json(const Vocab& v);
Result<Vocab> vocab_from_json(const nlohmann::json& j);

nlohmann::json metadata_to_json(const Metadata& m);      // keeps each value's GGUF type
Result<Metadata> metadata_from_json(const nlohmann::json& j);

std::optional<MixerKind> mixer_from_name(std::string_view s);
std::optional<FfnKind> ffn_from_name(std::string_view s);

}  // namespace ef
