import Foundation
import TorchShim

/// A source whose keys are another source's keys behind a prefix (`embeddings.cls_token` ->
/// `backbone.embeddings.cls_token`): serves a bare HF DINOv2 checkpoint where `DINOv2Net` expects `backbone.*`.
public final class PrefixedWeights: WeightSource {
    public let base: WeightSource
    public let prefix: String
    public let keys: [String]

    public init(_ base: WeightSource, prefix: String) {
        self.base = base
        let separated = prefix.hasSuffix(".") || prefix.isEmpty ? prefix : prefix + "."
        self.prefix = separated
        keys = base.keys.map { separated + $0 }
    }

    func baseKey(_ key: String) -> String? { key.hasPrefix(prefix) ? String(key.dropFirst(prefix.count)) : nil }

    public func info(_ key: String) -> TensorInfo? { baseKey(key).flatMap { base.info($0) } }

    public func tensor(_ key: String) throws -> Tensor {
        guard let k = baseKey(key) else { throw SafeTensorsError.missingKey("<prefixed \(prefix)>", key) }
        return try base.tensor(k)
    }
}

/// Several sources seen as one; a key present in more than one comes from the first that has it. This is
/// `load_state_dict(strict=False)` over pretrained weights: list the loaded checkpoint first.
public final class OverlayWeights: WeightSource {
    public let layers: [WeightSource]
    public let keys: [String]

    public init(_ layers: [WeightSource]) {
        self.layers = layers
        keys = Array(Set(layers.flatMap(\.keys))).sorted()
    }

    public func info(_ key: String) -> TensorInfo? {
        for layer in layers { if let i = layer.info(key) { return i } }
        return nil
    }

    public func tensor(_ key: String) throws -> Tensor {
        for layer in layers where layer.info(key) != nil { return try layer.tensor(key) }
        throw SafeTensorsError.missingKey("<overlay>", key)
    }
}
