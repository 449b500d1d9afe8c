// The SSM branch of a TrainModel layer, forward and backward, as the runtime composes it
// (runtime/session_batch.cpp: mamba1_batch, mamba2_batch). A is trained as stored (ssm_a holds
// A = -exp(A_log), already negative), dt's bias is added before the scan/SSD (softplus inside).
#include "core/train/grad_ops.h"
#include "core/train/train_model_impl.h"

namespace ef::train {

namespace {

// out: (N, n) += bias: (n) per row; dbias += column sums of d: (N, n).
void add_bias(std::span<float> out, std::span<const float> bias, int64_t N, int64_t n) {
    for (int64_t r = 0; r < N; ++r)
        for (int64_t i = 0; i < n; ++i) out[size_t(r * n + i)] += bias[size_t(i)];
}
void bias_backward(std::span<float> dbias, std::span<const float> d, int64_t N, int64_t n) {
    if (dbias.empty()) return;
    for (int64_t r = 0; r < N; ++r)
        for (int64_t i = 0; i < n; ++i) dbias[size_t(i)] += d[size_t(r * n + i)];
}

}  // namespace

// ---- Mamba-2 -------------------------------------------------------------------------------------------
// in_proj rows: [z (di); x (di); B (G, Ns); C (G, Ns); dt (H)] — x, B, C (xBC) go through conv1d + silu.

void mamba2_branch_forward(const ModelConfig& c, const Mamba2Weights& w, std::span<const float> xn, Shape2 s,
                           Mamba2Acts& a, std::vector<float>& out, rt::ThreadPool* pool) {
    const auto& sc = c.ssm;
    const int64_t N = s.N(), T = s.T, C = c.dim, di = sc.d_inner, Ns = sc.d_state, G = sc.n_groups, H = sc.n_heads;
    const int64_t P = di / H, conv_dim = di + 2 * G * Ns, width = di + conv_dim + H, K = sc.d_conv;
    std::vector<float> zxbcdt(size_t(N * width));
    matmul_forward(zxbcdt, xn, w.in.v, N, C, width, pool);
    columns_copy(a.z, zxbcdt, N, width, 0, di);
    columns_copy(a.xbc_in, zxbcdt, N, width, di, conv_dim);
    columns_copy(a.dt, zxbcdt, N, width, di + conv_dim, H);
    add_bias(a.dt, w.dt_b.v, N, H);
    a.xbc_c.resize(size_t(N * conv_dim));
    for (int64_t b = 0; b < s.B; ++b)
        conv1d_forward(seq(a.xbc_c, b, T, conv_dim), seq(a.xbc_in, b, T, conv_dim), w.conv_w.v, w.conv_b.v, T, conv_dim, K);
    std::vector<float> xbc(a.xbc_c.size());
    silu_forward(xbc, a.xbc_c);
    columns_copy(a.x, xbc, N, conv_dim, 0, di);
    columns_copy(a.Bm, xbc, N, conv_dim, di, G * Ns);
    columns_copy(a.Cm, xbc, N, conv_dim, di + G * Ns, G * Ns);
    a.y.resize(size_t(N * di));
    a.Ss.resize(size_t(s.B * (T + 1) * H * P * Ns));
    const int64_t state = (T + 1) * H * P * Ns;
    for (int64_t b = 0; b < s.B; ++b)
        ssd_forward(seq(a.y, b, T, di), std::span<float>(a.Ss).subspan(size_t(b * state), size_t(state)),
                    seq(a.x, b, T, di), seq(a.dt, b, T, H), w.A.v, seq(a.Bm, b, T, G * Ns), seq(a.Cm, b, T, G * Ns),
                    w.D.v, T, H, P, G, Ns, pool);
    a.sz.resize(size_t(N * di));
    silu_forward(a.sz, a.z);
    a.yg.resize(size_t(N * di));
    mul_forward(a.yg, a.y, a.sz);  // the gate comes before the norm
    const std::vector<float>* last = &a.yg;
    if (!w.norm.v.empty()) {
        a.yn.resize(size_t(N * di));
        a.rstd.resize(size_t(N * G));
        rmsnorm_groups_forward(a.yn, a.rstd, a.yg, w.norm.v, N, di, G, c.norm_eps);
        last = &a.yn;
    }
    out.resize(size_t(N * C));
    matmul_forward(out, *last, w.out.v, N, di, C, pool);
}

void mamba2_branch_backward(const ModelConfig& c, const Mamba2Weights& w, std::span<const float> xn, Shape2 s,
                            const Mamba2Acts& a, std::span<const float> dout, std::span<float> dxn, rt::ThreadPool* pool) {
    const auto& sc = c.ssm;
    const int64_t N = s.N(), T = s.T, C = c.dim, di = sc.d_inner, Ns = sc.d_state, G = sc.n_groups, H = sc.n_heads;
    const int64_t P = di / H, conv_dim = di + 2 * G * Ns, width = di + conv_dim + H, K = sc.d_conv;
    const bool norm = !w.norm.v.empty();
    std::vector<float> dlast, dyg;
    zeros(dlast, size_t(N * di));
    matmul_backward(dlast, w.out.g, dout, norm ? a.yn : a.yg, w.out.v, N, di, C, pool);
    if (norm) {
        zeros(dyg, size_t(N * di));
        rmsnorm_groups_backward(dyg, w.norm.g, dlast, a.yg, w.norm.v, a.rstd, N, di, G);
    } else {
        dyg.swap(dlast);
    }
    std::vector<float> dy, dsz, dz;
    zeros(dy, size_t(N * di));
    zeros(dsz, size_t(N * di));
    mul_backward(dy, dsz, dyg, a.y, a.sz);
    zeros(dz, size_t(N * di));
    silu_backward(dz, dsz, a.z);

    std::vector<float> dx, dB, dC, ddt;
    zeros(dx, size_t(N * di));
    zeros(dB, size_t(N * G * Ns));
    zeros(dC, size_t(N * G * Ns));
    zeros(ddt, size_t(N * H));
    const int64_t state = (T + 1) * H * P * Ns;
    for (int64_t b = 0; b < s.B; ++b)
        ssd_backward(seq(dx, b, T, di), seq(ddt, b, T, H), w.A.g, seq(dB, b, T, G * Ns), seq(dC, b, T, G * Ns), w.D.g,
                     seq(dy, b, T, di), std::span<const float>(a.Ss).subspan(size_t(b * state), size_t(state)),
                     seq(a.x, b, T, di), seq(a.dt, b, T, H), w.A.v, seq(a.Bm, b, T, G * Ns), seq(a.Cm, b, T, G * Ns), w.D.v,
                     T, H, P, G, Ns, pool);
    bias_backward(w.dt_b.g, ddt, N, H);

    std::vector<float> dxbc, dxbc_c, dxbc_in;
    zeros(dxbc, size_t(N * conv_dim));
    columns_add(dxbc, dx, N, conv_dim, 0, di);
    columns_add(dxbc, dB, N, conv_dim, di, G * Ns);
    columns_add(dxbc, dC, N, conv_dim, di + G * Ns, G * Ns);
    zeros(dxbc_c, size_t(N * conv_dim));
    silu_backward(dxbc_c, dxbc, a.xbc_c);
    zeros(dxbc_in, size_t(N * conv_dim));
    for (int64_t b = 0; b < s.B; ++b)
        conv1d_backward(seq(dxbc_in, b, T, conv_dim), w.conv_w.g, w.conv_b.g, seq(dxbc_c, b, T, conv_dim),
                        seq(a.xbc_in, b, T, conv_dim), w.conv_w.v, T, conv_dim, K);

    std::vector<float> dzxbcdt;
    zeros(dzxbcdt, size_t(N * width));
    columns_add(dzxbcdt, dz, N, width, 0, di);
    columns_add(dzxbcdt, dxbc_in, N, width, di, conv_dim);
    columns_add(dzxbcdt, ddt, N, width, di + conv_dim, H);
    matmul_backward(dxn, w.in.g, dzxbcdt, xn, w.in.v, N, C, width, pool);
}

// ---- Mamba-1 -------------------------------------------------------------------------------------------
// in_proj rows: [x (di); z (di)]; x_proj rows: [dt (R); B (Ns); C (Ns)]; dt_proj: (di, R) + bias.

void mamba1_branch_forward(const ModelConfig& c, const Mamba1Weights& w, std::span<const float> xn, Shape2 s,
                           Mamba1Acts& a, std::vector<float>& out, rt::ThreadPool* pool) {
    const auto& sc = c.ssm;
    const int64_t N = s.N(), T = s.T, C = c.dim, di = sc.d_inner, Ns = sc.d_state, R = sc.dt_rank, K = sc.d_conv;
    std::vector<float> xz(size_t(N * 2 * di));
    matmul_forward(xz, xn, w.in.v, N, C, 2 * di, pool);
    columns_copy(a.x_in, xz, N, 2 * di, 0, di);
    columns_copy(a.z, xz, N, 2 * di, di, di);
    a.xc.resize(size_t(N * di));
    for (int64_t b = 0; b < s.B; ++b)
        conv1d_forward(seq(a.xc, b, T, di), seq(a.x_in, b, T, di), w.conv_w.v, w.conv_b.v, T, di, K);
    a.xs.resize(size_t(N * di));
    silu_forward(a.xs, a.xc);
    std::vector<float> dbc(size_t(N * (R + 2 * Ns)));
    matmul_forward(dbc, a.xs, w.x.v, N, di, R + 2 * Ns, pool);
    columns_copy(a.dtr, dbc, N, R + 2 * Ns, 0, R);
    columns_copy(a.Bm, dbc, N, R + 2 * Ns, R, Ns);
    columns_copy(a.Cm, dbc, N, R + 2 * Ns, R + Ns, Ns);
    a.dt.resize(size_t(N * di));
    matmul_forward(a.dt, a.dtr, w.dt_w.v, N, R, di, pool);
    add_bias(a.dt, w.dt_b.v, N, di);
    a.y.resize(size_t(N * di));
    a.hs.resize(size_t(s.B * (T + 1) * di * Ns));
    const int64_t state = (T + 1) * di * Ns;
    for (int64_t b = 0; b < s.B; ++b)
        selective_scan_forward(seq(a.y, b, T, di), std::span<float>(a.hs).subspan(size_t(b * state), size_t(state)),
                               seq(a.xs, b, T, di), seq(a.dt, b, T, di), w.A.v, seq(a.Bm, b, T, Ns), seq(a.Cm, b, T, Ns),
                               w.D.v, T, di, Ns, pool);
    a.sz.resize(size_t(N * di));
    silu_forward(a.sz, a.z);
    a.yg.resize(size_t(N * di));
    mul_forward(a.yg, a.y, a.sz);
    out.resize(size_t(N * C));
    matmul_forward(out, a.yg, w.out.v, N, di, C, pool);
}

void mamba1_branch_backward(const ModelConfig& c, const Mamba1Weights& w, std::span<const float> xn, Shape2 s,
                            const Mamba1Acts& a, std::span<const float> dout, std::span<float> dxn, rt::ThreadPool* pool) {
    const auto& sc = c.ssm;
    const int64_t N = s.N(), T = s.T, C = c.dim, di = sc.d_inner, Ns = sc.d_state, R = sc.dt_rank, K = sc.d_conv;
    std::vector<float> dyg, dy, dsz, dz;
    zeros(dyg, size_t(N * di));
    matmul_backward(dyg, w.out.g, dout, a.yg, w.out.v, N, di, C, pool);
    zeros(dy, size_t(N * di));
    zeros(dsz, size_t(N * di));
    mul_backward(dy, dsz, dyg, a.y, a.sz);
    zeros(dz, size_t(N * di));
    silu_backward(dz, dsz, a.z);

    std::vector<float> dxs, ddt, dB, dC;
    zeros(dxs, size_t(N * di));
    zeros(ddt, size_t(N * di));
    zeros(dB, size_t(N * Ns));
    zeros(dC, size_t(N * Ns));
    const int64_t state = (T + 1) * di * Ns;
    for (int64_t b = 0; b < s.B; ++b)
        selective_scan_backward(seq(dxs, b, T, di), seq(ddt, b, T, di), w.A.g, seq(dB, b, T, Ns), seq(dC, b, T, Ns), w.D.g,
                                seq(dy, b, T, di), std::span<const float>(a.hs).subspan(size_t(b * state), size_t(state)),
                                seq(a.xs, b, T, di), seq(a.dt, b, T, di), w.A.v, seq(a.Bm, b, T, Ns), seq(a.Cm, b, T, Ns),
                                w.D.v, T, di, Ns, pool);
    bias_backward(w.dt_b.g, ddt, N, di);
    std::vector<float> ddtr, ddbc;
    zeros(ddtr, size_t(N * R));
    matmul_backward(ddtr, w.dt_w.g, ddt, a.dtr, w.dt_w.v, N, R, di, pool);
    zeros(ddbc, size_t(N * (R + 2 * Ns)));
    columns_add(ddbc, ddtr, N, R + 2 * Ns, 0, R);
    columns_add(ddbc, dB, N, R + 2 * Ns, R, Ns);
    columns_add(ddbc, dC, N, R + 2 * Ns, R + Ns, Ns);
    matmul_backward(dxs, w.x.g, ddbc, a.xs, w.x.v, N, di, R + 2 * Ns, pool);  // xs feeds the scan and x_proj

    std::vector<float> dxc, dx_in, dxz;
    zeros(dxc, size_t(N * di));
    silu_backward(dxc, dxs, a.xc);
    zeros(dx_in, size_t(N * di));
    for (int64_t b = 0; b < s.B; ++b)
        conv1d_backward(seq(dx_in, b, T, di), w.conv_w.g, w.conv_b.g, seq(dxc, b, T, di), seq(a.x_in, b, T, di),
                        w.conv_w.v, T, di, K);
    zeros(dxz, size_t(N * 2 * di));
    columns_add(dxz, dx_in, N, 2 * di, 0, di);
    columns_add(dxz, dz, N, 2 * di, di, di);
    matmul_backward(dxn, w.in.g, dxz, xn, w.in.v, N, C, 2 * di, pool);
}

}  // namespace ef::train
