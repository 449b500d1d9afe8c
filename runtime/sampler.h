// Turning next-token logits into a token: llama.cpp's default chain, in its order
//   repetition penalty -> top-k -> top-p -> min-p -> temperature -> draw from the softmax
// (common/common.h's default sampler list, without the samplers we do not offer: DRY, top-n-sigma,
// typical-p, XTC). Temperature <= 0 is greedy: the argmax of the penalized logits.
// The draw uses our own portable RNG (xoshiro256** seeded through splitmix64), so a seed gives the
// same tokens on every machine and compiler.
#pragma once
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "core/result.h"

namespace ef {

struct SamplerParams {
    float temperature = 0.8f;    // <= 0: greedy
    int32_t top_k = 40;          // <= 0: off
    float top_p = 0.95f;         // >= 1: off
    float min_p = 0.05f;         // <= 0: off
    float repeat_penalty = 1.0f; // 1: off
    int32_t repeat_last_n = 64;  // tokens of history the penalty looks at (0: off, -1: whole history)
    uint64_t seed = 0;
};
// Rejects values that make no sense (NaN, negative temperature below -0, p outside [0, 1], penalty <= 0).
Status validate(const SamplerParams& p);

// xoshiro256** (Blackman & Vigna), state filled by splitmix64 from one 64-bit seed.
class Rng {
public:
    explicit Rng(uint64_t seed = 0) { this->seed(seed); }
    void seed(uint64_t seed);
    uint64_t next();
    double uniform();  // [0, 1) with 53 random bits
private:
    uint64_t s_[4] = {};
};

struct Candidate {
    int32_t id = 0;
    float logit = 0.0f;
    float p = 0.0f;
};

// The filters, each on a candidate list as llama.cpp's llama_token_data_array (exposed for tests).
namespace sampling {
std::vector<Candidate> candidates(std::span<const float> logits);
// Tokens seen in `history` (each once, however often): positive logits / penalty, others * penalty.
void repetition_penalty(std::vector<Candidate>& c, std::span<const int32_t> history, float penalty);
// Keeps the k largest logits, sorted descending (k <= 0: no change).
void top_k(std::vector<Candidate>& c, int32_t k);
// Softmax over the candidates, sorted descending; keeps the shortest prefix whose probability
// reaches p (at least one).
void top_p(std::vector<Candidate>& c, float p);
// Keeps candidates whose probability is at least p times the largest: logit >= max + ln p.
void min_p(std::vector<Candidate>& c, float p);
void temperature(std::vector<Candidate>& c, float t);
// Sets p = softmax(logit) (max-subtracted, in float like llama.cpp).
void softmax(std::vector<Candidate>& c);
// Index into c of the first largest logit.
size_t argmax(const std::vector<Candidate>& c);
}  // namespace sampling

class Sampler {
public:
    static Result<Sampler> create(const SamplerParams& p);

    // Picks the next token from logits (vocab). Does not record it: call accept().
    int32_t sample(std::span<const float> logits);
    // Records a token in the penalty history (prompt tokens too, as llama.cpp's tools do).
    void accept(int32_t token);
    void reset();  // forgets history, reseeds
    const SamplerParams& params() const { return p_; }

private:
    explicit Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {}
    SamplerParams p_;
    Rng rng_;
    std::deque<int32_t> history_;
};

}  // namespace ef
