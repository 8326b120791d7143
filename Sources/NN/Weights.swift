import Foundation
import TorchShim

public enum WeightError: Error, CustomStringConvertible, Equatable {
    case missing(String, expected: [Int]?)
    case shapeMismatch(String, expected: [Int], found: [Int])
    case unexpected([String])
    case badConfig(String)

    public var description: String {
        switch self {
        case .missing(let k, let s): return "checkpoint is missing '\(k)'" + (s.map { " (expected shape \($0))" } ?? "")
        case .shapeMismatch(let k, let e, let f): return "checkpoint tensor '\(k)' has shape \(f), expected \(e)"
        case .unexpected(let ks):
            let shown = ks.prefix(8).joined(separator: ", ")
            return "checkpoint has \(ks.count) unexpected tensor(s): \(shown)\(ks.count > 8 ? ", ..." : "")"
        case .badConfig(let why): return "bad model config: \(why)"
        }
    }
}

/// Hands out checkpoint tensors by key path, like candle's VarBuilder: `w.pp("blocks").pp(0).tensor("weight", [C])`.
/// Every tensor taken is checked for shape, moved to the target device and (floating types) dtype, and recorded,
/// so `checkAllUsed()` can name keys the model did not consume.
public final class WeightLoader {
    public let source: WeightSource
    public let prefix: String
    public let device: Device
    /// Floating-point weights are converted to this dtype (nil keeps the stored dtype).
    public let dtype: DType?
    private let used: UsedKeys

    final class UsedKeys { var keys = Set<String>() }

    public init(_ source: WeightSource, device: Device = .cpu, dtype: DType? = nil) {
        self.source = source
        self.prefix = ""
        self.device = device
        self.dtype = dtype
        self.used = UsedKeys()
    }

    private init(source: WeightSource, prefix: String, device: Device, dtype: DType?, used: UsedKeys) {
        self.source = source
        self.prefix = prefix
        self.device = device
        self.dtype = dtype
        self.used = used
    }

    /// A loader for the sub-module `name` (push a key-path component).
    public func pp(_ name: String) -> WeightLoader {
        WeightLoader(source: source, prefix: key(name), device: device, dtype: dtype, used: used)
    }

    public func pp(_ index: Int) -> WeightLoader { pp(String(index)) }

    /// The same keys, another device/dtype.
    public func with(device: Device? = nil, dtype: DType?? = nil) -> WeightLoader {
        WeightLoader(source: source, prefix: prefix, device: device ?? self.device, dtype: dtype ?? self.dtype, used: used)
    }

    public func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    public func contains(_ name: String) -> Bool { source.info(key(name)) != nil }

    /// Stored shape of `name`, if present.
    public func shape(_ name: String) -> [Int]? { source.info(key(name))?.shape }

    /// The tensor `name`, checked against `shape` when given (nil dims in `shape` are not checked: use -1).
    public func tensor(_ name: String, shape expected: [Int]? = nil, keepDType: Bool = false) throws -> Tensor {
        let k = key(name)
        guard let info = source.info(k) else { throw WeightError.missing(k, expected: expected) }
        if let expected {
            let ok = expected.count == info.shape.count && zip(expected, info.shape).allSatisfy { $0 == -1 || $0 == $1 }
            guard ok else { throw WeightError.shapeMismatch(k, expected: expected, found: info.shape) }
        }
        used.keys.insert(k)
        let t = try source.tensor(k)
        let targetDType = (!keepDType && info.dtype.isFloatingPoint) ? (dtype ?? info.dtype) : info.dtype
        if t.device == device && t.dtype == targetDType { return t }
        return try t.to(device, dtype: targetDType)
    }

    public func optionalTensor(_ name: String, shape: [Int]? = nil) throws -> Tensor? {
        contains(name) ? try tensor(name, shape: shape) : nil
    }

    /// Marks keys as intentionally ignored (e.g. training-only buffers).
    public func ignore(_ names: [String]) {
        for n in names where contains(n) { used.keys.insert(key(n)) }
    }

    /// Keys under this loader's prefix that nothing consumed.
    public func unusedKeys() -> [String] {
        let p = prefix.isEmpty ? "" : prefix + "."
        return source.keys.filter { (p.isEmpty || $0.hasPrefix(p)) && !used.keys.contains($0) }
    }

    /// Throws `WeightError.unexpected` naming every key the model did not take.
    public func checkAllUsed() throws {
        let rest = unusedKeys()
        if !rest.isEmpty { throw WeightError.unexpected(rest.sorted()) }
    }
}

/// Keys and shapes of a checkpoint without its data (e.g. the full-size manifests), for checking that a model
/// accepts every key and shape. Tensors are zero-strided stand-ins (no memory per element).
public final class ManifestWeights: WeightSource {
    private let infos: [String: TensorInfo]
    public let keys: [String]

    public init(_ infos: [String: TensorInfo]) {
        self.infos = infos
        self.keys = infos.keys.sorted()
    }

    /// Reads a manifest JSON: either {"tensors": [{"key","shape","dtype"}...]} or {key: {"shape","dtype"}}
    /// or a list of such entries; dtype names like "torch.float16", "float16", "F16".
    public convenience init(url: URL) throws {
        let data = try Data(contentsOf: url)
        let json = try JSONSerialization.jsonObject(with: data)
        var infos: [String: TensorInfo] = [:]
        func add(_ key: String, _ e: [String: Any]) throws {
            guard let shape = e["shape"] as? [Int] else { throw WeightError.badConfig("manifest entry \(key) has no shape") }
            let dt = ManifestWeights.parseDType((e["dtype"] ?? e["dtype_after_use_fp16"]) as? String ?? "float32")
            infos[key] = TensorInfo(dtype: dt, shape: shape)
        }
        func addList(_ list: [Any]) throws {
            for item in list {
                guard let e = item as? [String: Any], let k = (e["key"] ?? e["name"]) as? String else { continue }
                try add(k, e)
            }
        }
        if let obj = json as? [String: Any] {
            if let list = (obj["tensors"] ?? obj["keys"] ?? obj["state_dict"] ?? obj["entries"]) as? [Any] {
                try addList(list)
            } else if let dict = (obj["tensors"] ?? obj["state_dict"]) as? [String: Any] {
                for (k, v) in dict { if let e = v as? [String: Any] { try add(k, e) } }
            } else {
                for (k, v) in obj { if let e = v as? [String: Any], e["shape"] != nil { try add(k, e) } }
            }
        } else if let list = json as? [Any] {
            try addList(list)
        }
        guard !infos.isEmpty else { throw WeightError.badConfig("no tensors found in manifest \(url.lastPathComponent)") }
        self.init(infos)
    }

    static func parseDType(_ s: String) -> DType {
        let n = s.replacingOccurrences(of: "torch.", with: "").lowercased()
        switch n {
        case "float16", "half", "f16": return .float16
        case "bfloat16", "bf16": return .bfloat16
        case "float64", "double", "f64": return .float64
        case "int64", "long", "i64": return .int64
        case "int32", "int", "i32": return .int32
        case "uint8", "u8": return .uint8
        case "bool": return .bool
        default: return .float32
        }
    }

    public func info(_ key: String) -> TensorInfo? { infos[key] }

    public func tensor(_ key: String) throws -> Tensor {
        guard let info = infos[key] else { throw SafeTensorsError.missingKey("<manifest>", key) }
        return try Tensor.zeros([], dtype: info.dtype).expand(info.shape)
    }
}

/// Random weights for a list of keys and shapes, generated directly on `device` (benchmarks at real sizes:
/// the work is the same as with trained weights; the output means nothing). Matrices get N(0, 1/fan_in),
/// vectors named like norm gains get 1, other vectors small noise, integer tensors zeros.
public final class RandomWeights: WeightSource {
    private let infos: [String: TensorInfo]
    public let keys: [String]
    public let device: Device
    public let dtype: DType
    private let generator: Generator?

    public init(_ infos: [String: TensorInfo], device: Device, dtype: DType, seed: UInt64 = 0) throws {
        self.infos = infos
        self.keys = infos.keys.sorted()
        self.device = device
        self.dtype = dtype
        self.generator = try Generator(seed: seed, device: device)
    }

    public convenience init(manifest: ManifestWeights, device: Device, dtype: DType, seed: UInt64 = 0) throws {
        var infos: [String: TensorInfo] = [:]
        for k in manifest.keys { infos[k] = manifest.info(k) }
        try self.init(infos, device: device, dtype: dtype, seed: seed)
    }

    public func info(_ key: String) -> TensorInfo? { infos[key] }

    public func tensor(_ key: String) throws -> Tensor {
        guard let info = infos[key] else { throw SafeTensorsError.missingKey("<random>", key) }
        guard info.dtype.isFloatingPoint else { return try Tensor.zeros(info.shape, dtype: info.dtype, device: device) }
        if info.shape.count <= 1 {
            let lower = key.lowercased()
            let isGain = lower.hasSuffix("norm.weight") || lower.contains("norm") && lower.hasSuffix(".weight")
                || lower.hasSuffix(".gamma") || lower.hasSuffix("lambda1") || lower.hasSuffix(".scale")
            if isGain { return try Tensor.ones(info.shape, dtype: dtype, device: device) }
            return try Tensor.randn(info.shape, dtype: dtype, device: device, generator: generator) * 0.02
        }
        let fanIn = info.shape.dropFirst().reduce(1, *)
        return try Tensor.randn(info.shape, dtype: dtype, device: device, generator: generator) * (1.0 / Double(fanIn).squareRoot())
    }
}
