// Private to the session (session.cpp: decode, one token; session_batch.cpp: prefill, T tokens):
// the weights (with their EdgeFusion outlier corrections: runtime/outliers.h) and state of one
// layer. Not part of the runtime's interface.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "core/arch/architecture.h"
#include "runtime/outliers.h"
#include "runtime/session.h"

namespace ef {
namespace session_detail {

struct AttnLayer {
    rt::Weight wq, wk, wv, wo;
    std::vector<float> k_cache, v_cache;  // (positions, kv_heads, head_dim), grown per token
};

struct Mamba1Layer {
    rt::Weight in, x, dt, out;
    std::vector<float> conv_w, conv_b, dt_b, A, D;   // (di, K), (di), (di), (di, N), (di)
    std::vector<float> dt_norm, b_norm, c_norm;      // Jamba only: (dt_rank), (N), (N)
    std::vector<float> conv_state, ssm_state;        // (di, K - 1), (di, N)
};

struct Mamba2Layer {
    rt::Weight in, out;
    std::vector<float> conv_w, conv_b, dt_b, A, D, norm;  // (conv_dim, K), (conv_dim), (H), (H), (H), (G, di / G)
    std::vector<float> conv_state, ssm_state;             // (conv_dim, K - 1), (H, di / H, N)
};

struct FfnLayer {
    rt::Weight gate, up, down;
    std::vector<float> norm;  // (dim)
};

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace session_detail

struct Session::Layer {
    LayerDesc desc;
    MixerKind ssm_kind = MixerKind::Mamba2;  // the SSM this layer runs (mixer, or the routed branch)
    bool has_attn = false, has_ssm = false;
    float gate = 1.0f;                       // attention share
    std::vector<float> attn_norm;
    session_detail::AttnLayer attn;
    session_detail::Mamba1Layer m1;
    session_detail::Mamba2Layer m2;
    session_detail::FfnLayer ffn;

    // Which branches run: a routed layer runs one of them (hard) or both (soft).
    bool runs_attention(Routing r) const {
        const bool routed = desc.mixer == MixerKind::Routed;
        return has_attn && (!routed || r == Routing::Soft || gate >= 0.5f);
    }
    bool runs_ssm(Routing r) const {
        const bool routed = desc.mixer == MixerKind::Routed;
        return has_ssm && (!routed || r == Routing::Soft || gate < 0.5f);
    }
};

}  // namespace ef
