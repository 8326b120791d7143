import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(String, String)
    case truncated(String)
    case badHeader(String, String)
    case offsetOutOfRange(String, String)
    case missingKey(String, String)
    case unsupportedDType(String, String)

    public var description: String {
        switch self {
        case .cannotOpen(let f, let why): return "cannot open safetensors file \(f): \(why)"
        case .truncated(let f): return "safetensors file \(f) is truncated"
        case .badHeader(let f, let why): return "safetensors file \(f) has a bad header: \(why)"
        case .offsetOutOfRange(let f, let key): return "safetensors file \(f): tensor '\(key)' lies outside the data"
        case .missingKey(let f, let key): return "no tensor '\(key)' in \(f)"
        case .unsupportedDType(let f, let d): return "safetensors file \(f): unsupported dtype \(d)"
        }
    }
}

/// Name, dtype and shape of one stored tensor.
public struct TensorInfo: Equatable, Sendable {
    public let dtype: DType
    public let shape: [Int]
    /// Element count; callers build `TensorInfo` only for shapes whose product fits an `Int` (see `elementCount`).
    public var count: Int { TensorInfo.elementCount(shape) ?? Int.max }

    /// The product of `shape`, or nil when a dimension is negative or the product overflows `Int`.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var product = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            product = next
        }
        return product
    }

    public init(dtype: DType, shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
    }
}

/// Something that serves named weights (one safetensors file, a sharded checkpoint, a test dictionary).
public protocol WeightSource: AnyObject {
    var keys: [String] { get }
    func info(_ key: String) -> TensorInfo?
    /// The tensor on the CPU in its stored dtype (zero-copy where possible).
    func tensor(_ key: String) throws -> Tensor
}

extension DType {
    static func fromSafeTensors(_ s: String) -> DType? {
        switch s {
        case "F32": return .float32
        case "F16": return .float16
        case "BF16": return .bfloat16
        case "F64": return .float64
        case "I64": return .int64
        case "I32": return .int32
        case "I16": return .int16
        case "I8": return .int8
        case "U8": return .uint8
        case "BOOL": return .bool
        case "F8_E4M3": return .float8e4m3
        case "F8_E5M2": return .float8e5m2
        default: return nil
        }
    }

    var safeTensorsName: String {
        switch self {
        case .float32: return "F32"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        case .float64: return "F64"
        case .int64: return "I64"
        case .int32: return "I32"
        case .int16: return "I16"
        case .int8: return "I8"
        case .uint8: return "U8"
        case .bool: return "BOOL"
        case .float8e4m3: return "F8_E4M3"
        case .float8e5m2: return "F8_E5M2"
        }
    }
}

/// A memory-mapped safetensors file. Tensors are zero-copy views of the mapping; the mapping stays alive
/// while any of them does.
public final class SafeTensorsFile: WeightSource, @unchecked Sendable {
    public let path: String
    public let metadata: [String: String]
    private let entries: [String: (info: TensorInfo, begin: Int, end: Int)]
    public let keys: [String]
    private let base: UnsafeMutableRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    /// Largest header accepted (the format's own limit is 100 MB).
    static let maxHeaderBytes = 100_000_000

    public convenience init(url: URL) throws { try self.init(path: url.path) }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SafeTensorsError.cannotOpen(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafeTensorsError.cannotOpen(path, String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError.cannotOpen(path, (st.st_mode & S_IFMT) == S_IFDIR
                ? "it is a directory where a weights file belongs" : "not a regular file")
        }
        let size = Int(st.st_size)
        guard size >= 8 else { throw SafeTensorsError.truncated(path) }
        // Private, writable mapping: libtorch may write to a tensor in place; writes stay in this process.
        guard let m = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(path, "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = m
        mappedLength = size
        do {
            // Compared as UInt64: a length of 2^63 or more does not fit an Int.
            let rawHeaderLen = UInt64(littleEndian: m.loadUnaligned(as: UInt64.self))
            guard rawHeaderLen <= UInt64(SafeTensorsFile.maxHeaderBytes) else {
                throw SafeTensorsError.badHeader(path, "header length \(rawHeaderLen) is too large")
            }
            let headerLen = Int(rawHeaderLen)
            guard 8 + headerLen <= size else { throw SafeTensorsError.truncated(path) }
            dataStart = 8 + headerLen
            let headerData = Data(bytes: m + 8, count: headerLen)
            let parsed = try SafeTensorsFile.parseHeader(headerData, path: path, dataLength: size - dataStart)
            metadata = parsed.metadata
            entries = parsed.entries
            keys = parsed.entries.keys.sorted()
        } catch {
            munmap(m, size)
            throw error
        }
    }

    deinit { if let base { munmap(base, mappedLength) } }

    static func parseHeader(_ data: Data, path: String, dataLength: Int) throws
        -> (metadata: [String: String], entries: [String: (info: TensorInfo, begin: Int, end: Int)]) {
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch {
            throw SafeTensorsError.badHeader(path, "not JSON (\(error.localizedDescription))")
        }
        guard let dict = json as? [String: Any] else { throw SafeTensorsError.badHeader(path, "not a JSON object") }
        var metadata: [String: String] = [:]
        var entries: [String: (info: TensorInfo, begin: Int, end: Int)] = [:]
        for (key, value) in dict {
            if key == "__metadata__" {
                guard let m = value as? [String: Any] else { throw SafeTensorsError.badHeader(path, "__metadata__ is not an object") }
                for (k, v) in m { metadata[k] = (v as? String) ?? "\(v)" }
                continue
            }
            guard let e = value as? [String: Any], let dt = e["dtype"] as? String,
                  let shape = e["shape"] as? [Int], let offsets = e["data_offsets"] as? [Int], offsets.count == 2 else {
                throw SafeTensorsError.badHeader(path, "entry '\(key)' lacks dtype/shape/data_offsets")
            }
            guard let dtype = DType.fromSafeTensors(dt) else { throw SafeTensorsError.unsupportedDType(path, dt) }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw SafeTensorsError.badHeader(path, "entry '\(key)' has a negative dimension") }
            guard let count = TensorInfo.elementCount(shape) else {
                throw SafeTensorsError.badHeader(path, "entry '\(key)' has shape \(shape), whose element count overflows")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataLength else { throw SafeTensorsError.offsetOutOfRange(path, key) }
            let info = TensorInfo(dtype: dtype, shape: shape)
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, bytes == end - begin else {
                throw SafeTensorsError.badHeader(path, "entry '\(key)' has \(end - begin) bytes for shape \(shape) of \(dtype)")
            }
            entries[key] = (info, begin, end)
        }
        return (metadata, entries)
    }

    public func info(_ key: String) -> TensorInfo? { entries[key]?.info }

    public func tensor(_ key: String) throws -> Tensor {
        guard let e = entries[key], let base else { throw SafeTensorsError.missingKey(path, key) }
        if e.info.count == 0 { return try Tensor.empty(e.info.shape, dtype: e.info.dtype) }
        return try Tensor.wrapping(base + dataStart + e.begin, shape: e.info.shape, dtype: e.info.dtype, owner: self)
    }

    /// Raw bytes of one tensor (no copy; valid while this file object lives).
    public func rawBytes(_ key: String) throws -> UnsafeRawBufferPointer {
        guard let e = entries[key], let base else { throw SafeTensorsError.missingKey(path, key) }
        return UnsafeRawBufferPointer(start: base + dataStart + e.begin, count: e.end - e.begin)
    }
}

/// A checkpoint split over several files, described by `*.safetensors.index.json` ({"weight_map": {key: file}}).
public final class ShardedSafeTensors: WeightSource {
    private let shards: [String: SafeTensorsFile]
    private let weightMap: [String: String]
    public let keys: [String]
    public let indexPath: String

    public init(indexURL: URL) throws {
        indexPath = indexURL.path
        let data: Data
        do { data = try Data(contentsOf: indexURL) } catch {
            throw SafeTensorsError.cannotOpen(indexURL.path, error.localizedDescription)
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = obj["weight_map"] as? [String: String] else {
            throw SafeTensorsError.badHeader(indexURL.path, "index has no weight_map")
        }
        let dir = indexURL.deletingLastPathComponent()
        var shards: [String: SafeTensorsFile] = [:]
        for file in Set(map.values) {
            shards[file] = try SafeTensorsFile(url: dir.appendingPathComponent(file))
        }
        for (key, file) in map where shards[file]?.info(key) == nil {
            throw SafeTensorsError.missingKey(dir.appendingPathComponent(file).path, key)
        }
        self.shards = shards
        self.weightMap = map
        self.keys = map.keys.sorted()
    }

    public func info(_ key: String) -> TensorInfo? { weightMap[key].flatMap { shards[$0]?.info(key) } }

    public func tensor(_ key: String) throws -> Tensor {
        guard let file = weightMap[key], let shard = shards[file] else { throw SafeTensorsError.missingKey(indexPath, key) }
        return try shard.tensor(key)
    }
}

/// Weights held in memory by name (tests, renamed or merged checkpoints).
public final class TensorDictionary: WeightSource {
    public private(set) var tensors: [String: Tensor]
    public init(_ tensors: [String: Tensor]) { self.tensors = tensors }
    public var keys: [String] { tensors.keys.sorted() }
    public func info(_ key: String) -> TensorInfo? { tensors[key].map { TensorInfo(dtype: $0.dtype, shape: $0.shape) } }
    public func tensor(_ key: String) throws -> Tensor {
        guard let t = tensors[key] else { throw SafeTensorsError.missingKey("<memory>", key) }
        return t
    }
    public subscript(key: String) -> Tensor? {
        get { tensors[key] }
        set { tensors[key] = newValue }
    }
}

public enum SafeTensors {
    /// Opens a weights location: a `.safetensors` file, a `.safetensors.index.json`, or a folder holding
    /// either (an index file wins; otherwise every `*.safetensors` in it is merged).
    public static func open(_ url: URL) throws -> WeightSource {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SafeTensorsError.cannotOpen(url.path, "no such file or folder")
        }
        if !isDir.boolValue {
            return url.path.hasSuffix(".json") ? try ShardedSafeTensors(indexURL: url) : try SafeTensorsFile(url: url)
        }
        guard url.pathExtension != "safetensors" else {
            throw SafeTensorsError.cannotOpen(url.path, "it is a directory where a weights file belongs")
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        if let index = files.sorted().first(where: { $0.hasSuffix(".safetensors.index.json") }) {
            return try ShardedSafeTensors(indexURL: url.appendingPathComponent(index))
        }
        let shards = files.filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !shards.isEmpty else { throw SafeTensorsError.cannotOpen(url.path, "no .safetensors files in folder") }
        if shards.count == 1 { return try SafeTensorsFile(url: url.appendingPathComponent(shards[0])) }
        var merged: [String: Tensor] = [:]
        for s in shards {
            let f = try SafeTensorsFile(url: url.appendingPathComponent(s))
            for k in f.keys { merged[k] = try f.tensor(k) }
        }
        return TensorDictionary(merged)
    }

    /// Serialises tensors (any device; stored as they are) with optional metadata. Keys are written sorted.
    public static func serialize(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var blobs: [[UInt8]] = []
        var offset = 0
        for name in names {
            let t = tensors[name]!
            let bytes = try t.bytes()
            header[name] = ["dtype": t.dtype.safeTensorsName, "shape": t.shape,
                            "data_offsets": [offset, offset + bytes.count]] as [String: Any]
            offset += bytes.count
            blobs.append(bytes)
        }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerData.count % 8 != 0 { headerData.append(0x20) }
        var out = Data(capacity: 8 + headerData.count + offset)
        var len = UInt64(headerData.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(headerData)
        for b in blobs { out.append(contentsOf: b) }
        return out
    }

    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        try serialize(tensors, metadata: metadata).write(to: url, options: .atomic)
    }
}
