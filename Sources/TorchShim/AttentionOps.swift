import CTorchShim

/// PyTorch's FlashAttention-2 kernels called directly (no SDPA backend selection, so no per-shape cuDNN plan build),
/// including the variable-length form that attends inside packed sequences without padding or masks.
public enum FlashAttention {
    /// Whether the shim was built against a CUDA libtorch (the kernels need a CUDA device of sm80 or newer).
    public static var isCompiled: Bool { ts_flash_attention_compiled() != 0 }

    /// Whether the kernels take these inputs: CUDA, float16/bfloat16, head size a multiple of 8 up to 256.
    public static func supports(device: Device, dtype: DType, headSize: Int) -> Bool {
        isCompiled && device.isCUDA && (dtype == .float16 || dtype == .bfloat16) && headSize % 8 == 0 && headSize <= 256
    }

    /// Attention inside packed sequences: q [Tq, H, D], k, v [Tk, H, D]; sequence s holds rows cuQ[s] ..< cuQ[s+1]
    /// of q and cuK[s] ..< cuK[s+1] of k and v (cuQ, cuK: int32 [S + 1] on the device). Scale 1/sqrt(D).
    /// Returns [Tq, H, D].
    public static func varlen(q: Tensor, k: Tensor, v: Tensor, cuQ: Tensor, cuK: Tensor, maxQ: Int, maxK: Int) throws -> Tensor {
        try tensorCall { ts_flash_attention_varlen(q.handle, k.handle, v.handle, cuQ.handle, cuK.handle, Int64(maxQ),
                                                   Int64(maxK), $0) }
    }

    /// Dense attention without a mask: q [B, H, Lq, D], k, v [B, H, Lk, D] -> [B, H, Lq, D]. Scale 1/sqrt(D).
    public static func dense(q: Tensor, k: Tensor, v: Tensor) throws -> Tensor {
        try tensorCall { ts_flash_attention(q.handle, k.handle, v.handle, $0) }
    }
}

/// PyTorch's process-wide SDPA backend switches.
public enum SDPBackends {
    /// cuDNN attention (`torch.backends.cuda.enable_cudnn_sdp`). With recent cuDNN, PyTorch prefers it on sm90+ and it
    /// builds an execution plan for every new (batch, heads, lengths, mask) shape, hundreds of ms each: costly when
    /// sequence lengths change per request. Turning it off sends SDPA to FlashAttention / memory-efficient attention.
    public static var cuDNNEnabled: Bool {
        get { ts_sdp_cudnn_enabled() != 0 }
        set { ts_sdp_set_cudnn_enabled(newValue ? 1 : 0) }
    }
}
