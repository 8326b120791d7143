/*
 * torch_shim_attention.h: fused attention entry points (FlashAttention-2, including the variable-length form that
 * TRELLIS' sparse transformers use), and the process-wide switch of PyTorch's cuDNN SDPA backend. Conventions as in
 * torch_shim.h.
 */
#ifndef TORCH_SHIM_ATTENTION_H
#define TORCH_SHIM_ATTENTION_H

#include <stdint.h>

#include "torch_shim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when libtorchshim was built against a CUDA libtorch (PyTorch's FlashAttention-2 kernels exist; they run on
 * sm80 and newer), else 0. */
int ts_flash_attention_compiled(void);

/*
 * FlashAttention-2 over packed variable-length sequences (PyTorch's `_flash_attention_forward` with cumulative
 * sequence lengths; no padding, no mask):
 *   q [Tq, H, D], k, v [Tk, H, D]: float16 or bfloat16 on one CUDA device, D a multiple of 8 up to 256;
 *   cu_q, cu_k: int32 [S + 1] on the same device, 0 = cu[0] <= ... <= cu[S] = Tq (resp. Tk): sequence s is rows
 *   cu[s] ..< cu[s+1]; max_q, max_k: the longest query / key sequence. Softmax scale 1/sqrt(D).
 * Returns [Tq, H, D] (same dtype). Fails with PyTorch's message on CPU tensors or unsupported inputs.
 */
ts_tensor ts_flash_attention_varlen(ts_tensor q, ts_tensor k, ts_tensor v, ts_tensor cu_q, ts_tensor cu_k,
                                    int64_t max_q, int64_t max_k, char **err);

/*
 * FlashAttention-2 on dense batches, bypassing SDPA's backend choice: q [B, H, Lq, D], k, v [B, H, Lk, D]
 * (float16/bfloat16, CUDA, last dim contiguous), no mask, scale 1/sqrt(D). Returns [B, H, Lq, D].
 */
ts_tensor ts_flash_attention(ts_tensor q, ts_tensor k, ts_tensor v, char **err);

/* torch.backends.cuda.enable_cudnn_sdp(enabled) / cudnn_sdp_enabled(): process-wide. */
void ts_sdp_set_cudnn_enabled(int enabled);
int ts_sdp_cudnn_enabled(void);

#ifdef __cplusplus
}
#endif

#endif
