import Foundation
import NN
import TorchShim

/// A torch-hub DINOv2 state dict (facebookresearch/dinov2 `DinoVisionTransformer`: `cls_token`, `pos_embed`,
/// `mask_token`, `patch_embed.proj`, `blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1,
/// mlp.fc2, ls2.gamma}`, `norm`) presented under the Hugging Face `Dinov2Model` names that `DINOv2` loads.
/// The fused `attn.qkv` is served as `query`/`key`/`value` slices (rows q, k, v). `hubPrefix` is where the hub
/// keys sit (`backbone.` in the validator's `quality_scorer.pth`); the HF names are served under `hfPrefix`.
/// Keys outside the hub layout pass through unchanged (the scoring heads).
public final class DINOv2HubWeights: WeightSource {
    enum Mapping {
        case rename(String)
        case qkvSlice(String, part: Int)
    }

    public let base: WeightSource
    public let keys: [String]
    private let mappings: [String: Mapping]

    public init(_ base: WeightSource, hubPrefix: String = "backbone.", hfPrefix: String = "backbone.") throws {
        self.base = base
        var mappings: [String: Mapping] = [:]
        let direct: [String: String] = [
            "cls_token": "embeddings.cls_token", "pos_embed": "embeddings.position_embeddings",
            "mask_token": "embeddings.mask_token", "register_tokens": "embeddings.register_tokens",
            "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
            "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
            "norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias",
        ]
        let blockParts: [String: String] = [
            "norm1.weight": "norm1.weight", "norm1.bias": "norm1.bias",
            "attn.proj.weight": "attention.output.dense.weight", "attn.proj.bias": "attention.output.dense.bias",
            "ls1.gamma": "layer_scale1.lambda1", "norm2.weight": "norm2.weight", "norm2.bias": "norm2.bias",
            "mlp.fc1.weight": "mlp.fc1.weight", "mlp.fc1.bias": "mlp.fc1.bias",
            "mlp.fc2.weight": "mlp.fc2.weight", "mlp.fc2.bias": "mlp.fc2.bias", "ls2.gamma": "layer_scale2.lambda1",
        ]
        for key in base.keys {
            guard key.hasPrefix(hubPrefix) else { mappings[key] = .rename(key); continue }
            let local = String(key.dropFirst(hubPrefix.count))
            if let hf = direct[local] { mappings[hfPrefix + hf] = .rename(key); continue }
            let parts = local.split(separator: ".", maxSplits: 2).map(String.init)
            guard parts.count == 3, parts[0] == "blocks", let block = Int(parts[1]) else {
                throw WeightError.badConfig("'\(key)' is not a torch-hub DINOv2 key (block_chunks > 0 and other "
                    + "layouts are not supported)")
            }
            let layer = "\(hfPrefix)encoder.layer.\(block)."
            if let hf = blockParts[parts[2]] {
                mappings[layer + hf] = .rename(key)
            } else if parts[2] == "attn.qkv.weight" || parts[2] == "attn.qkv.bias" {
                let suffix = parts[2].hasSuffix("weight") ? "weight" : "bias"
                for (i, name) in ["query", "key", "value"].enumerated() {
                    mappings[layer + "attention.attention.\(name).\(suffix)"] = .qkvSlice(key, part: i)
                }
            } else {
                throw WeightError.badConfig("'\(key)' is not a torch-hub DINOv2 key")
            }
        }
        self.mappings = mappings
        keys = mappings.keys.sorted()
    }

    public func info(_ key: String) -> TensorInfo? {
        switch mappings[key] {
        case .rename(let k)?: return base.info(k)
        case .qkvSlice(let k, _)?:
            guard let i = base.info(k), let rows = i.shape.first, rows % 3 == 0 else { return nil }
            return TensorInfo(dtype: i.dtype, shape: [rows / 3] + i.shape.dropFirst())
        case nil: return nil
        }
    }

    public func tensor(_ key: String) throws -> Tensor {
        switch mappings[key] {
        case .rename(let k)?: return try base.tensor(k)
        case .qkvSlice(let k, let part)?:
            let fused = try base.tensor(k)
            guard fused.size(0) % 3 == 0 else {
                throw WeightError.shapeMismatch(k, expected: [-1] + fused.shape.dropFirst(), found: fused.shape)
            }
            let rows = fused.size(0) / 3
            return try fused.narrow(0, start: part * rows, length: rows).contiguous()
        case nil: throw SafeTensorsError.missingKey("<dinov2 hub>", key)
        }
    }
}
