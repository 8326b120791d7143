import Foundation

/// A hash fed in pieces: `update` any number of times, then `finalize` once.
public protocol StreamingHash: AnyObject {
    func update(_ bytes: UnsafeRawBufferPointer)
    /// The digest of everything fed so far. The hash must not be updated afterwards.
    func finalize() -> [UInt8]
}

extension StreamingHash {
    public func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public func update(_ text: String) {
        update(Array(text.utf8))
    }

    public func finalizeHex() -> String {
        hexString(finalize())
    }
}

/// Lower-case hex, two digits per byte.
public func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Shared block buffering of the Merkle–Damgård hashes (64-byte blocks, 64-bit big-endian bit length).
/// Subclasses implement `compress`.
public class BlockHash64: StreamingHash {
    private let pending = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
    private var pendingCount = 0
    private var totalBytes: UInt64 = 0
    private var finished = false

    init() {}

    deinit {
        pending.deallocate()
    }

    /// Processes one 64-byte block (possibly unaligned).
    func compress(_ block: UnsafeRawPointer) {
        fatalError("subclass must implement compress")
    }

    /// The digest bytes of the current state (after the final block).
    func stateDigest() -> [UInt8] {
        fatalError("subclass must implement stateDigest")
    }

    public final func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "hash updated after finalize")
        guard var source = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        totalBytes &+= UInt64(remaining)
        if pendingCount > 0 {
            let take = min(64 - pendingCount, remaining)
            (pending + pendingCount).copyMemory(from: source, byteCount: take)
            pendingCount += take
            source += take
            remaining -= take
            if pendingCount < 64 { return }
            compress(UnsafeRawPointer(pending))
            pendingCount = 0
        }
        while remaining >= 64 {
            compress(source)
            source += 64
            remaining -= 64
        }
        if remaining > 0 {
            pending.copyMemory(from: source, byteCount: remaining)
            pendingCount = remaining
        }
    }

    public final func finalize() -> [UInt8] {
        precondition(!finished, "hash finalized twice")
        finished = true
        let bitLength = totalBytes &* 8
        pending.storeBytes(of: 0x80, toByteOffset: pendingCount, as: UInt8.self)
        pendingCount += 1
        if pendingCount > 56 {
            (pending + pendingCount).initializeMemory(as: UInt8.self, repeating: 0, count: 64 - pendingCount)
            compress(UnsafeRawPointer(pending))
            pendingCount = 0
        }
        (pending + pendingCount).initializeMemory(as: UInt8.self, repeating: 0, count: 56 - pendingCount)
        pending.storeBytes(of: bitLength.bigEndian, toByteOffset: 56, as: UInt64.self)
        compress(UnsafeRawPointer(pending))
        return stateDigest()
    }
}

@inline(__always)
func rotateRight(_ value: UInt32, _ count: UInt32) -> UInt32 {
    (value >> count) | (value << (32 - count))
}

@inline(__always)
func rotateLeft(_ value: UInt32, _ count: UInt32) -> UInt32 {
    (value << count) | (value >> (32 - count))
}
