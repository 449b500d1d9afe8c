#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

namespace ef {

Status validate(const SamplerParams& p) {
    if (!std::isfinite(p.temperature)) return make_error("temperature must be a finite number");
    if (!(p.top_p >= 0.0f && p.top_p <= 1.0f)) return make_error("top-p must be in [0, 1], got " + std::to_string(p.top_p));
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return make_error("min-p must be in [0, 1], got " + std::to_string(p.min_p));
    if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty))
        return make_error("repeat penalty must be a positive number, got " + std::to_string(p.repeat_penalty));
    if (p.repeat_last_n < -1) return make_error("repeat-last-n must be -1 (whole history), 0 (off) or a count");
    return {};
}

namespace {
uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

void Rng::seed(uint64_t seed) {
    for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }

namespace sampling {

namespace {
void sort_desc(std::vector<Candidate>& c) {
    // Stable so equal logits keep id order (deterministic on every standard library).
    std::stable_sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.logit > b.logit; });
}
}  // namespace

std::vector<Candidate> candidates(std::span<const float> logits) {
    std::vector<Candidate> c(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) c[i] = {int32_t(i), logits[i], 0.0f};
    return c;
}

void repetition_penalty(std::vector<Candidate>& c, std::span<const int32_t> history, float penalty) {
    if (penalty == 1.0f || history.empty()) return;
    const std::unordered_set<int32_t> seen(history.begin(), history.end());
    for (auto& x : c) {
        if (!seen.count(x.id)) continue;
        if (x.logit <= 0.0f) x.logit *= penalty;
        else x.logit /= penalty;
    }
}

void top_k(std::vector<Candidate>& c, int32_t k) {
    if (k <= 0) return;
    sort_desc(c);
    if (size_t(k) < c.size()) c.resize(size_t(k));
}

void softmax(std::vector<Candidate>& c) {
    if (c.empty()) return;
    float mx = c[0].logit;
    for (const auto& x : c) mx = std::max(mx, x.logit);
    float sum = 0.0f;
    for (auto& x : c) {
        x.p = std::exp(x.logit - mx);
        sum += x.p;
    }
    for (auto& x : c) x.p /= sum;
}

void top_p(std::vector<Candidate>& c, float p) {
    if (p >= 1.0f || c.empty()) return;
    sort_desc(c);
    softmax(c);
    float cum = 0.0f;
    for (size_t i = 0; i < c.size(); ++i) {
        cum += c[i].p;
        if (cum >= p) {
            c.resize(i + 1);
            return;
        }
    }
}

void min_p(std::vector<Candidate>& c, float p) {
    if (p <= 0.0f || c.empty()) return;
    float mx = c[0].logit;
    for (const auto& x : c) mx = std::max(mx, x.logit);
    const float floor = mx + std::log(p);
    std::erase_if(c, [floor](const Candidate& x) { return x.logit < floor; });
}

void temperature(std::vector<Candidate>& c, float t) {
    if (t <= 0.0f) return;
    for (auto& x : c) x.logit /= t;
}

size_t argmax(const std::vector<Candidate>& c) {
    size_t best = 0;
    for (size_t i = 1; i < c.size(); ++i)
        if (c[i].logit > c[best].logit) best = i;
    return best;
}

}  // namespace sampling

Result<Sampler> Sampler::create(const SamplerParams& p) {
    if (Status s = validate(p); !s) return s.error();
    return Sampler(p);
}

int32_t Sampler::sample(std::span<const float> logits) {
    if (logits.empty()) return -1;
    auto c = sampling::candidates(logits);
    if (p_.repeat_last_n != 0 && p_.repeat_penalty != 1.0f) {
        const std::vector<int32_t> h(history_.begin(), history_.end());
        sampling::repetition_penalty(c, h, p_.repeat_penalty);
    }
    if (p_.temperature <= 0.0f) return c[sampling::argmax(c)].id;  // id order: the first maximum wins
    sampling::top_k(c, p_.top_k);
    sampling::top_p(c, p_.top_p);
    sampling::min_p(c, p_.min_p);
    sampling::temperature(c, p_.temperature);
    sampling::softmax(c);
    // Inverse CDF in double; the last candidate takes any rounding remainder.
    const double u = rng_.uniform();
    double cum = 0.0;
    for (const auto& x : c) {
        cum += x.p;
        if (u < cum) return x.id;
    }
    return c.back().id;
}

void Sampler::accept(int32_t token) {
    if (p_.repeat_last_n == 0) return;
    history_.push_back(token);
    if (p_.repeat_last_n > 0)
        while (history_.size() > size_t(p_.repeat_last_n)) history_.pop_front();
}

void Sampler::reset() {
    history_.clear();
    rng_.seed(p_.seed);
}

}  // namespace ef
