import NN
import TorchShim

// The validator runs its fp32 open_clip model under `torch.autocast("cuda")`: matmuls and convolutions in fp16,
// layer norms in fp32 (their output stays fp32), so the residual stream is fp32. These layers reproduce that
// when the WeightLoader's dtype is fp16/bf16: matmul/conv weights take the loader's dtype and cast their input
// to it; norm parameters (and other elementwise parameters) are loaded in fp32 and normalise in fp32.
// With an fp32 loader every cast is a no-op and the arithmetic is plain fp32, as in the CPU fixtures.

/// A loader for parameters autocast keeps in fp32 (norm gains, layer scales, embeddings).
func fp32Loader(_ w: WeightLoader) -> WeightLoader {
    w.dtype == nil ? w : w.with(dtype: .some(.float32))
}

/// LayerNorm over the last dimension in fp32 (autocast's `layer_norm`).
struct Fp32LayerNorm {
    let weight: Tensor
    let bias: Tensor
    let dim: Int
    let eps: Double

    init(_ w: WeightLoader, dim: Int, eps: Double) throws {
        let w32 = fp32Loader(w)
        weight = try w32.tensor("weight", shape: [dim])
        bias = try w32.tensor("bias", shape: [dim])
        self.dim = dim
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.layerNorm(x.to(.float32), shape: [dim], weight: weight, bias: bias, eps: eps)
    }

    /// timm `LayerNorm2d`: the same norm over channels of an NCHW tensor.
    func channelsFirst(_ x: Tensor) throws -> Tensor {
        try callAsFunction(x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
    }
}

/// A Linear whose input is cast to the weight dtype (autocast's `linear`).
struct CastLinear {
    let linear: Linear

    init(_ w: WeightLoader, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        linear = try Linear(w, inFeatures: inFeatures, outFeatures: outFeatures, bias: bias)
    }

    init(weight: Tensor, bias: Tensor?) { linear = Linear(weight: weight, bias: bias) }

    var dtype: DType { linear.weight.dtype }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try linear(x.to(linear.weight.dtype)) }
}

/// A 2-d convolution whose input is cast to the weight dtype (autocast's `conv2d`).
struct CastConv2d {
    let conv: Conv

    init(_ w: WeightLoader, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
         groups: Int = 1) throws {
        conv = try Conv(w, spatialDims: 2, inChannels: inChannels, outChannels: outChannels, kernel: [kernel],
                        stride: [stride], padding: [padding], groups: groups)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try conv(x.to(conv.weight.dtype)) }
}

/// Receives named intermediate tensors (for parity checks against the reference's intermediates).
public typealias TensorTap = (String, Tensor) throws -> Void
