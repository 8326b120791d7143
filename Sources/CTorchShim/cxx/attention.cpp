// Fused attention (FlashAttention-2, variable-length and dense) and the cuDNN SDPA switch; see torch_shim_attention.h.
#include "shim_internal.h"

#include "../include/torch_shim_attention.h"

#include <ATen/Context.h>
#include <ATen/ops/_flash_attention_forward.h>
#include <ATen/ops/_scaled_dot_product_flash_attention.h>

using namespace tsi;

extern "C" {

int ts_flash_attention_compiled(void) {
#ifdef SHIM_WITH_CUDA
    return 1;
#else
    return 0;
#endif
}

ts_tensor ts_flash_attention_varlen(ts_tensor q, ts_tensor k, ts_tensor v, ts_tensor cu_q, ts_tensor cu_k,
                                    int64_t max_q, int64_t max_k, char **err) {
    TS_GUARD(nullptr, {
        const at::Tensor &query = T(q);
        if (query.dim() != 3 || T(k).dim() != 3 || T(v).dim() != 3)
            throw std::invalid_argument("flash varlen attention takes q, k, v as [T, H, D]");
        if (max_q <= 0 || max_k <= 0) throw std::invalid_argument("flash varlen attention: max lengths must be > 0");
        auto cq = T(cu_q).to(at::kInt).contiguous();
        auto ck = T(cu_k).to(at::kInt).contiguous();
        // Rows of q/k/v may be strided views (e.g. one slice of a fused qkv); the kernel wants plain rows.
        auto out = at::_flash_attention_forward(query.contiguous(), T(k).contiguous(), T(v).contiguous(), cq, ck,
                                                max_q, max_k, 0.0, false, false);
        return wrap(std::get<0>(out));
    })
}

ts_tensor ts_flash_attention(ts_tensor q, ts_tensor k, ts_tensor v, char **err) {
    TS_GUARD(nullptr, {
        auto out = at::_scaled_dot_product_flash_attention(T(q), T(k), T(v), 0.0, false, false);
        return wrap(std::get<0>(out));
    })
}

void ts_sdp_set_cudnn_enabled(int enabled) { at::globalContext().setSDPUseCuDNN(enabled != 0); }

int ts_sdp_cudnn_enabled(void) { return at::globalContext().userEnabledCuDNNSDP() ? 1 : 0; }

} // extern "C"
