import CTorchShim
import Foundation

/// A Swift scalar type that maps to a tensor dtype (for host <-> tensor copies).
public protocol TensorElement {
    static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }

/// An n-dimensional libtorch tensor. The handle is owned by this object and freed by ARC.
/// Every operation returns a new `Tensor` (views share storage, as in PyTorch) and throws `TorchError`.
public final class Tensor: @unchecked Sendable {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { ts_tensor_free(handle) }

    // MARK: creation

    /// Copies host values into a new CPU tensor.
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) throws {
        let shape64 = (shape ?? [values.count]).map(Int64.init)
        let expected = shape64.reduce(1, *)
        guard expected == values.count else {
            throw TorchError("shape \(shape64) needs \(expected) values, got \(values.count)")
        }
        let h = try values.withUnsafeBytes { raw in
            try checked { ts_from_data(raw.baseAddress, shape64, Int32(shape64.count), T.dtype.rawValue, $0) }
        }
        guard let h else { throw TorchError("ts_from_data returned nothing") }
        self.init(handle: h)
    }

    /// A scalar (0-d) tensor.
    public convenience init(scalar: Double, dtype: DType = .float32, device: Device = .cpu) throws {
        let t = try Tensor.full([], value: scalar, dtype: dtype, device: device)
        self.init(handle: try checked { ts_shallow_clone(t.handle, $0) }!)
    }

    /// Copies raw bytes (already in `dtype` layout) into a new CPU tensor.
    public static func fromBytes(_ bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws -> Tensor {
        let shape64 = shape.map(Int64.init)
        let count = shape.reduce(1, *)
        guard count * dtype.byteSize == bytes.count else {
            throw TorchError("shape \(shape) of \(dtype) needs \(count * dtype.byteSize) bytes, got \(bytes.count)")
        }
        return try tensorCall { ts_from_data(bytes.baseAddress, shape64, Int32(shape64.count), dtype.rawValue, $0) }
    }

    /// Wraps host memory without copying. `owner` is kept alive until libtorch frees the storage.
    public static func wrapping(_ pointer: UnsafeMutableRawPointer, shape: [Int], dtype: DType, owner: AnyObject) throws -> Tensor {
        let shape64 = shape.map(Int64.init)
        let ctx = Unmanaged.passRetained(owner).toOpaque()
        do {
            return try tensorCall {
                ts_from_blob(pointer, shape64, Int32(shape64.count), dtype.rawValue, ctx, { ctx in
                    if let ctx { Unmanaged<AnyObject>.fromOpaque(ctx).release() }
                }, $0)
            }
        } catch {
            Unmanaged<AnyObject>.fromOpaque(ctx).release()
            throw error
        }
    }

    public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try tensorCall { ts_empty(s, Int32(s.count), dtype.rawValue, device.code, $0) }
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try tensorCall { ts_zeros(s, Int32(s.count), dtype.rawValue, device.code, $0) }
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try tensorCall { ts_ones(s, Int32(s.count), dtype.rawValue, device.code, $0) }
    }

    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try tensorCall { ts_full(s, Int32(s.count), value, dtype.rawValue, device.code, $0) }
    }

    public func zerosLike() throws -> Tensor { try tensorCall { ts_zeros_like(handle, $0) } }
    public func onesLike() throws -> Tensor { try tensorCall { ts_ones_like(handle, $0) } }
    public func fullLike(_ value: Double) throws -> Tensor { try tensorCall { ts_full_like(handle, value, $0) } }

    public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .int64,
                              device: Device = .cpu) throws -> Tensor {
        try tensorCall { ts_arange(start, end, step, dtype.rawValue, device.code, $0) }
    }

    public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32,
                                device: Device = .cpu) throws -> Tensor {
        try tensorCall { ts_linspace(start, end, Int64(steps), dtype.rawValue, device.code, $0) }
    }

    public static func eye(_ n: Int, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try tensorCall { ts_eye(Int64(n), dtype.rawValue, device.code, $0) }
    }

    /// Standard normal samples from `generator` (or torch's global one).
    public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                             generator: Generator? = nil) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try tensorCall { ts_randn(s, Int32(s.count), dtype.rawValue, device.code, generator?.handle, $0) }
    }

    public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                            generator: Generator? = nil) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try tensorCall { ts_rand(s, Int32(s.count), dtype.rawValue, device.code, generator?.handle, $0) }
    }

    public static func randint(_ low: Int, _ high: Int, shape: [Int], dtype: DType = .int64, device: Device = .cpu,
                               generator: Generator? = nil) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try tensorCall {
            ts_randint(Int64(low), Int64(high), s, Int32(s.count), dtype.rawValue, device.code, generator?.handle, $0)
        }
    }

    public static func randperm(_ n: Int, dtype: DType = .int64, device: Device = .cpu,
                                generator: Generator? = nil) throws -> Tensor {
        try tensorCall { ts_randperm(Int64(n), dtype.rawValue, device.code, generator?.handle, $0) }
    }

    /// Fills in place with N(mean, std); returns self for chaining.
    @discardableResult
    public func normal_(mean: Double = 0, std: Double = 1, generator: Generator? = nil) throws -> Tensor {
        try tensorCall { ts_normal_(handle, mean, std, generator?.handle, $0) }
    }

    @discardableResult
    public func uniform_(from: Double = 0, to: Double = 1, generator: Generator? = nil) throws -> Tensor {
        try tensorCall { ts_uniform_(handle, from, to, generator?.handle, $0) }
    }

    // MARK: properties

    public var shape: [Int] {
        let n = Int(ts_ndim(handle))
        var s = [Int64](repeating: 0, count: Swift.max(n, 1))
        _ = ts_shape(handle, &s, Int32(n))
        return s.prefix(n).map(Int.init)
    }

    public var strides: [Int] {
        let n = Int(ts_ndim(handle))
        var s = [Int64](repeating: 0, count: Swift.max(n, 1))
        _ = ts_strides(handle, &s, Int32(n))
        return s.prefix(n).map(Int.init)
    }

    public var ndim: Int { Int(ts_ndim(handle)) }
    public var count: Int { Int(ts_numel(handle)) }
    public var dtype: DType { DType(rawValue: ts_dtype(handle)) ?? .float32 }
    public var device: Device { Device(code: ts_device(handle)) }
    public var isContiguous: Bool { ts_is_contiguous(handle) != 0 }

    /// Size of dimension `d` (negative counts from the end).
    public func size(_ d: Int) -> Int {
        let s = shape
        return s[d < 0 ? s.count + d : d]
    }

    // MARK: conversion

    public func to(_ device: Device, dtype: DType? = nil, nonBlocking: Bool = false) throws -> Tensor {
        let dt = dtype ?? self.dtype
        return try tensorCall { ts_to(handle, device.code, dt.rawValue, nonBlocking ? 1 : 0, $0) }
    }

    public func to(_ dtype: DType) throws -> Tensor {
        try tensorCall { ts_to(handle, ts_device(handle), dtype.rawValue, 0, $0) }
    }

    public func pinMemory() throws -> Tensor { try tensorCall { ts_pin_memory(handle, $0) } }
    public func clone() throws -> Tensor { try tensorCall { ts_clone(handle, $0) } }
    public func contiguous() throws -> Tensor { try tensorCall { ts_contiguous(handle, $0) } }

    /// In place: self <- src (broadcast; converts dtype and device).
    public func copy_(_ src: Tensor) throws { _ = try checked { ts_copy_(handle, src.handle, $0) } }

    /// Copies the values to host memory as `T` (converting dtype first if needed).
    public func toArray<T: TensorElement>(_ type: T.Type = T.self) throws -> [T] {
        let src = dtype == T.dtype ? self : try to(T.dtype)
        let n = count
        var out = [T](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
        try out.withUnsafeMutableBytes { raw in
            _ = try checked { ts_copy_to_host(src.handle, raw.baseAddress, raw.count, $0) }
        }
        return out
    }

    public func floats() throws -> [Float] { try toArray(Float.self) }

    /// Raw bytes of the tensor in its own dtype (contiguous, on the host).
    public func bytes() throws -> [UInt8] {
        let n = count * dtype.byteSize
        var out = [UInt8](repeating: 0, count: n)
        try out.withUnsafeMutableBytes { raw in
            _ = try checked { ts_copy_to_host(handle, raw.baseAddress, raw.count, $0) }
        }
        return out
    }

    /// The data pointer of a CPU tensor (nil on CUDA); valid while `self` lives.
    public var cpuDataPointer: UnsafeMutableRawPointer? { ts_data_ptr(handle) }

    public func item() throws -> Double { try checked { ts_item_double(handle, $0) } }
    public func itemInt() throws -> Int { Int(try checked { ts_item_int64(handle, $0) }) }

    public var summary: String {
        guard let p: UnsafeMutablePointer<CChar> = try? checked({ ts_to_string(handle, $0) }) else { return "<tensor>" }
        defer { ts_free_string(p) }
        return String(cString: p)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(shape), \(dtype), \(device))" }
}
