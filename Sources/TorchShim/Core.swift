import CTorchShim
import Foundation

/// An error raised inside libtorch (or the shim), surfaced as a Swift error.
public struct TorchError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// True when the failure was an allocation failure (CUDA or host out of memory).
    public let isOutOfMemory: Bool

    public init(_ message: String) {
        self.isOutOfMemory = message.hasPrefix("[oom] ")
        self.message = isOutOfMemory ? String(message.dropFirst(6)) : message
    }

    public var description: String { isOutOfMemory ? "out of memory: \(message)" : message }
}

public enum DType: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case float32 = 0, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool, float8e4m3, float8e5m2

    public var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool, .float8e4m3, .float8e5m2: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64, .float8e4m3, .float8e5m2: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .float32: return "float32"
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        case .float64: return "float64"
        case .int64: return "int64"
        case .int32: return "int32"
        case .int16: return "int16"
        case .int8: return "int8"
        case .uint8: return "uint8"
        case .bool: return "bool"
        case .float8e4m3: return "float8_e4m3fn"
        case .float8e5m2: return "float8_e5m2"
        }
    }
}

public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    var code: Int32 {
        switch self {
        case .cpu: return -1
        case .cuda(let i): return Int32(i)
        }
    }

    init(code: Int32) { self = code < 0 ? .cpu : .cuda(Int(code)) }

    /// Parses "cpu", "cuda", "cuda:N".
    public init?(_ text: String) {
        let t = text.lowercased()
        if t == "cpu" { self = .cpu; return }
        if t == "cuda" || t == "gpu" { self = .cuda(0); return }
        if t.hasPrefix("cuda:"), let i = Int(t.dropFirst(5)), i >= 0 { self = .cuda(i); return }
        return nil
    }

    public var isCUDA: Bool { if case .cuda = self { return true } else { return false } }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let i): return "cuda:\(i)"
        }
    }
}

/// Runs a shim call, turning its error out-parameter into a thrown `TorchError`.
@inline(__always)
func checked<T>(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> T) throws -> T {
    var err: UnsafeMutablePointer<CChar>? = nil
    let result = body(&err)
    if let err {
        let message = String(cString: err)
        ts_free_string(err)
        throw TorchError(message)
    }
    return result
}

/// Runs a shim call that returns a new tensor handle.
@inline(__always)
func tensorCall(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> OpaquePointer?) throws -> Tensor {
    let handle = try checked(body)
    guard let handle else { throw TorchError("shim returned no tensor and no error") }
    return Tensor(handle: handle)
}

/// libtorch-wide settings and information.
public enum Torch {
    public static var version: String {
        var buf = [CChar](repeating: 0, count: 64)
        ts_version(&buf, buf.count)
        return String(cString: buf)
    }

    public static var numThreads: Int {
        get { Int(ts_get_num_threads()) }
        set { ts_set_num_threads(Int32(newValue)) }
    }

    /// Seeds PyTorch's global generators (CPU and CUDA), as `torch.manual_seed`.
    public static func manualSeed(_ seed: UInt64) throws {
        try checked { ts_manual_seed(seed, $0) }
    }
}

/// A PyTorch random-number generator: the same seed gives the numbers torch gives on that device.
public final class Generator: @unchecked Sendable {
    let handle: OpaquePointer

    public init(seed: UInt64, device: Device = .cpu) throws {
        guard let h = try checked({ ts_generator_new(seed, device.code, $0) }) else {
            throw TorchError("could not create generator")
        }
        handle = h
    }

    deinit { ts_generator_free(handle) }
}

/// Gibibytes, the unit every memory figure is reported in.
public enum GiB {
    public static let bytes = 1_073_741_824.0

    public static func value(_ bytes: Int64) -> Double { Double(bytes) / GiB.bytes }

    /// "12.34 GiB".
    public static func text(_ bytes: Int64) -> String { String(format: "%.2f GiB", value(bytes)) }
}

public struct CUDAMemoryStats: Sendable, CustomStringConvertible {
    public var allocated: Int64
    public var reserved: Int64
    public var peakAllocated: Int64
    public var peakReserved: Int64
    public var total: Int64

    public var description: String {
        "allocated \(GiB.text(allocated)), reserved \(GiB.text(reserved)), peak \(GiB.text(peakAllocated)), "
            + "total \(GiB.text(total))"
    }
}

/// CUDA device queries and allocator control.
public enum CUDA {
    public static var isAvailable: Bool { ts_cuda_is_available() != 0 }
    public static var deviceCount: Int { Int(ts_cuda_device_count()) }
    /// Whether libtorchshim.so was compiled with CUDA support (and its CUDA kernels).
    public static var shimHasCUDA: Bool { ts_built_with_cuda() != 0 }

    public static func synchronize(_ device: Int = 0) throws { try checked { ts_cuda_synchronize(Int32(device), $0) } }

    public static func deviceName(_ device: Int = 0) throws -> String {
        var buf = [CChar](repeating: 0, count: 256)
        try checked { ts_cuda_device_name(Int32(device), &buf, buf.count, $0) }
        return String(cString: buf)
    }

    public static func capability(_ device: Int = 0) throws -> (major: Int, minor: Int) {
        var major: Int32 = 0, minor: Int32 = 0
        try checked { ts_cuda_capability(Int32(device), &major, &minor, $0) }
        return (Int(major), Int(minor))
    }

    public static func memoryStats(_ device: Int = 0) throws -> CUDAMemoryStats {
        var s = [Int64](repeating: 0, count: 5)
        try checked { ts_cuda_memory_stats(Int32(device), &s, $0) }
        return CUDAMemoryStats(allocated: s[0], reserved: s[1], peakAllocated: s[2], peakReserved: s[3], total: s[4])
    }

    public static func resetPeakMemory(_ device: Int = 0) throws { try checked { ts_cuda_reset_peak_memory(Int32(device), $0) } }
    public static func emptyCache() throws { try checked { ts_cuda_empty_cache($0) } }

    /// Caps the caching allocator of `device` at `fraction` of its memory (e.g. to emulate a 24 GB card).
    public static func setMemoryFraction(_ fraction: Double, device: Int = 0) throws {
        try checked { ts_cuda_set_memory_fraction(fraction, Int32(device), $0) }
    }
}

/// A CUDA stream; `makeCurrent()` routes the calling thread's subsequent work to it.
public final class CUDAStream: @unchecked Sendable {
    let handle: OpaquePointer

    public init(device: Int) throws {
        guard let h = try checked({ ts_stream_new(Int32(device), $0) }) else { throw TorchError("no stream") }
        handle = h
    }

    public func makeCurrent() throws { try checked { ts_stream_set(handle, $0) } }
    public func synchronize() throws { try checked { ts_stream_synchronize(handle, $0) } }
    deinit { ts_stream_free(handle) }
}
