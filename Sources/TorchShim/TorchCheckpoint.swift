import Foundation
import TorchShim
#if canImport(Glibc)
import Glibc
#endif

public enum TorchCheckpointError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(String, String)
    case notZip(String)
    case corrupt(String, String)
    case unsupported(String, String)
    case missingKey(String, String)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let why): return "cannot open torch checkpoint \(p): \(why)"
        case .notZip(let p):
            return "\(p) is not a torch checkpoint (neither the zip format of torch.save since 1.6 nor the legacy "
                + "pickle stream; the pre-0.4 tar format is not supported)"
        case .corrupt(let p, let why): return "torch checkpoint \(p) is corrupt: \(why)"
        case .unsupported(let p, let why): return "torch checkpoint \(p): \(why) is not supported"
        case .missingKey(let p, let k): return "no tensor '\(k)' in torch checkpoint \(p)"
        }
    }
}

/// A `torch.save` checkpoint served as a `WeightSource` without Python. Both layouts torch writes are read:
/// the zip format of torch >= 1.6 (`<archive>/data.pkl` + `<archive>/data/<key>` storages, stored uncompressed)
/// and the legacy stream of earlier releases (still `_use_new_zipfile_serialization=False`, and how older
/// published weights such as torchvision's AlexNet and the LPIPS layers are stored): magic, version and system
/// pickles, the data pickle, the storage-key list, then each storage as an 8-byte element count and its bytes.
/// The pickle is interpreted for the opcodes and globals a state_dict uses (OrderedDict,
/// `torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, storage persistent ids); tensors are zero-copy
/// views of the memory-mapped file where their layout allows.
///
/// Nested dicts are flattened with dots (`{"state_dict": {"a.b": t}}` -> `state_dict.a.b`); pass `root` to
/// serve one sub-dict only (`root: ["state_dict"]` -> `a.b`). Non-tensor leaves (epochs, config strings) are
/// skipped.
public final class TorchCheckpoint: WeightSource, @unchecked Sendable {
    struct TensorRecord {
        let storageKey: String
        let dtype: DType
        let storageOffset: Int
        let shape: [Int]
        let strides: [Int]
    }

    public let path: String
    public let keys: [String]
    private let file: MappedFile
    private let records: [String: TensorRecord]
    /// Byte range of each storage inside the mapping.
    private let storages: StorageRanges

    public convenience init(url: URL, root: [String] = []) throws { try self.init(path: url.path, root: root) }

    public init(path: String, root: [String] = []) throws {
        self.path = path
        file = try MappedFile(path: path)
        let (value, storages) = ZipDirectory.isZip(file)
            ? try Self.readZip(file, path: path)
            : try Self.readLegacy(file, path: path)
        var selected = value
        for component in root {
            guard case .dict(let d) = selected, let child = d.value(forKey: component) else {
                throw TorchCheckpointError.missingKey(path, root.joined(separator: "."))
            }
            selected = child
        }
        var records: [String: TensorRecord] = [:]
        try Self.flatten(selected, prefix: "", into: &records, path: path)
        for (key, record) in records {
            guard let storage = storages[record.storageKey] else {
                throw TorchCheckpointError.corrupt(path, "storage '\(record.storageKey)' of '\(key)' has no data")
            }
            guard let count = TensorInfo.elementCount(record.shape) else {
                throw TorchCheckpointError.corrupt(path, "tensor '\(key)' has shape \(record.shape), whose element count overflows")
            }
            // A strided view is gathered into a copy of its full size; one larger than the whole file is a
            // corrupt size or stride, not a tensor (and must not drive an allocation).
            guard record.isContiguous || count <= file.length / record.dtype.byteSize else {
                throw TorchCheckpointError.corrupt(path, "strided tensor '\(key)' (shape \(record.shape), strides "
                    + "\(record.strides)) would be larger than the file")
            }
            guard let extent = record.byteExtent, extent <= storage.length else {
                throw TorchCheckpointError.corrupt(path, "tensor '\(key)' (shape \(record.shape), strides "
                    + "\(record.strides), offset \(record.storageOffset)) reaches past its \(storage.length)-byte storage")
            }
        }
        self.records = records
        self.storages = storages
        keys = records.keys.sorted()
    }

    typealias StorageRanges = [String: (offset: Int, length: Int)]

    static func readZip(_ file: MappedFile, path: String) throws -> (PickleValue, StorageRanges) {
        let zip = try ZipDirectory(file: file, path: path)
        guard let pickleName = zip.entries.keys.filter({ $0.hasSuffix("data.pkl") })
            .min(by: { $0.split(separator: "/").count < $1.split(separator: "/").count }) else {
            throw TorchCheckpointError.corrupt(path, "no data.pkl entry")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))   // "archive/" (may be empty)
        if let order = zip.entries[prefix + "byteorder"] {
            let text = String(decoding: file.bytes(order.offset, order.length), as: UTF8.self)
            guard text.hasPrefix("little") else { throw TorchCheckpointError.unsupported(path, "byte order '\(text)'") }
        }
        let entry = zip.entries[pickleName]!
        var unpickler = Unpickler(bytes: file.bytes(entry.offset, entry.length), path: path)
        let value = try unpickler.load()
        var storages: StorageRanges = [:]
        for key in unpickler.storageTypes.keys {
            if let data = zip.entries[prefix + "data/" + key] { storages[key] = (data.offset, data.length) }
        }
        return (value, storages)
    }

    /// The legacy magic number 0x1950a86a20f9469cfc6c, as pickle's little-endian LONG1 bytes.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    static func readLegacy(_ file: MappedFile, path: String) throws -> (PickleValue, StorageRanges) {
        let all = file.bytes(0, file.length)
        guard all.first == 0x80 else { throw TorchCheckpointError.notZip(path) }
        var position = 0
        func next() throws -> (PickleValue, Unpickler) {
            var u = Unpickler(bytes: all, path: path, position: position)
            let v = try u.load()
            position = u.position
            return (v, u)
        }
        guard case .largeInt(let magic) = try next().0, magic == legacyMagic else { throw TorchCheckpointError.notZip(path) }
        guard case .int(let version) = try next().0, version == 1001 else {
            throw TorchCheckpointError.unsupported(path, "legacy protocol version other than 1001")
        }
        if case .dict(let info) = try next().0, case .bool(false)? = info.value(forKey: "little_endian") {
            throw TorchCheckpointError.unsupported(path, "big-endian legacy data")
        }
        let (value, unpickler) = try next()
        guard case .list(let keyList) = try next().0 else { throw TorchCheckpointError.corrupt(path, "no storage key list") }
        var storages: StorageRanges = [:]
        for item in keyList.items {
            guard case .string(let key) = item, let dtype = unpickler.storageTypes[key] else {
                throw TorchCheckpointError.corrupt(path, "storage key list names an unknown storage")
            }
            guard position <= file.length - 8 else { throw TorchCheckpointError.corrupt(path, "storage '\(key)' is truncated") }
            let count = file.u64(position)
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard count >= 0, !overflow, position + 8 <= file.length - bytes else {
                throw TorchCheckpointError.corrupt(path, "storage '\(key)' is truncated")
            }
            storages[key] = (position + 8, bytes)
            position += 8 + bytes
        }
        return (value, storages)
    }

    static let maxNesting = 64

    static func flatten(_ value: PickleValue, prefix: String, into out: inout [String: TensorRecord],
                        path: String, depth: Int = 0) throws {
        switch value {
        case .tensor(let record):
            guard !prefix.isEmpty else { return }
            out[prefix] = record
        case .dict(let d):
            // A dict may hold itself through the pickle memo; state_dicts nest a few levels at most.
            guard depth < maxNesting else {
                throw TorchCheckpointError.corrupt(path, "dicts nested deeper than \(maxNesting) levels (or a dict that holds itself)")
            }
            for (k, v) in d.pairs {
                guard case .string(let name) = k else { continue }
                try flatten(v, prefix: prefix.isEmpty ? name : "\(prefix).\(name)", into: &out, path: path, depth: depth + 1)
            }
        default:
            return
        }
    }

    public func info(_ key: String) -> TensorInfo? {
        records[key].map { TensorInfo(dtype: $0.dtype, shape: $0.shape) }
    }

    public func tensor(_ key: String) throws -> Tensor {
        guard let r = records[key], let storage = storages[r.storageKey] else {
            throw TorchCheckpointError.missingKey(path, key)
        }
        let count = TensorInfo.elementCount(r.shape) ?? 0   // checked in init
        if count == 0 { return try Tensor.empty(r.shape, dtype: r.dtype) }
        let elementSize = r.dtype.byteSize
        let start = storage.offset + r.storageOffset * elementSize
        if r.isContiguous {
            return try Tensor.wrapping(file.base + start, shape: r.shape, dtype: r.dtype, owner: file)
        }
        // A strided view (a transposed or sliced tensor saved as such): gather it into a contiguous copy.
        var out = [UInt8](repeating: 0, count: count * elementSize)
        var index = [Int](repeating: 0, count: r.shape.count)
        let source = file.base + start
        out.withUnsafeMutableBytes { dst in
            for linear in 0..<count {
                var offset = 0
                for d in 0..<index.count { offset += index[d] * r.strides[d] }
                memcpy(dst.baseAddress! + linear * elementSize, source + offset * elementSize, elementSize)
                var d = index.count - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < r.shape[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
        }
        return try out.withUnsafeBytes { try Tensor.fromBytes($0, shape: r.shape, dtype: r.dtype) }
    }
}

extension TorchCheckpoint.TensorRecord {
    var isContiguous: Bool {
        var expected = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            if shape[d] != 1 && strides[d] != expected { return false }
            let (next, overflow) = expected.multipliedReportingOverflow(by: shape[d])
            if overflow { return false }
            expected = next
        }
        return true
    }

    /// Bytes from the storage start to one past the last element (nil on negative strides or overflow).
    var byteExtent: Int? {
        guard storageOffset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else { return nil }
        if shape.contains(0) {
            let (bytes, overflow) = storageOffset.multipliedReportingOverflow(by: dtype.byteSize)
            return overflow ? nil : bytes
        }
        var last = storageOffset
        for (size, stride) in zip(shape, strides) {
            let (step, o1) = (size - 1).multipliedReportingOverflow(by: stride)
            let (sum, o2) = last.addingReportingOverflow(step)
            guard !o1, !o2 else { return nil }
            last = sum
        }
        let (end, o3) = last.addingReportingOverflow(1)
        let (bytes, o4) = end.multipliedReportingOverflow(by: dtype.byteSize)
        return o3 || o4 ? nil : bytes
    }
}

/// A read-only file mapped privately (copy-on-write, so libtorch may write to wrapped tensors in place).
final class MappedFile: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let length: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw TorchCheckpointError.cannotOpen(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TorchCheckpointError.cannotOpen(path, String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw TorchCheckpointError.cannotOpen(path, (st.st_mode & S_IFMT) == S_IFDIR
                ? "it is a directory where a weights file belongs" : "not a regular file")
        }
        length = Int(st.st_size)
        guard length >= 22 else { throw TorchCheckpointError.notZip(path) }
        guard let m = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw TorchCheckpointError.cannotOpen(path, "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = m
    }

    deinit { munmap(base, length) }

    func bytes(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    func u16(_ at: Int) -> Int { Int(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
    func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
    func u64(_ at: Int) -> Int {
        Int(truncatingIfNeeded: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
    }
}

/// The central directory of a zip file (zip64 included): entry name -> byte range of its stored data.
struct ZipDirectory {
    struct Entry {
        let offset: Int
        let length: Int
    }

    let entries: [String: Entry]

    /// A zip file starts with a local file header ("PK\u{3}\u{4}").
    static func isZip(_ file: MappedFile) -> Bool { file.length >= 4 && file.u32(0) == 0x0403_4b50 }

    init(file: MappedFile, path: String) throws {
        let n = file.length
        func need(_ at: Int, _ count: Int, _ what: String) throws {
            guard at >= 0, count >= 0, at <= n - count else { throw TorchCheckpointError.corrupt(path, "\(what) lies outside the file") }
        }
        // End of central directory: the last signature within the final 64 KiB + 22 bytes.
        var eocd = -1
        var at = n - 22
        let lowest = Swift.max(0, n - 22 - 65_535)
        while at >= lowest {
            if file.u32(at) == 0x0605_4b50 { eocd = at; break }
            at -= 1
        }
        guard eocd >= 0 else { throw TorchCheckpointError.notZip(path) }
        var count = file.u16(eocd + 10)
        var directorySize = file.u32(eocd + 12)
        var directoryOffset = file.u32(eocd + 16)
        if (count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF) && eocd >= 20,
           file.u32(eocd - 20) == 0x0706_4b50 {
            let record = file.u64(eocd - 20 + 8)
            try need(record, 56, "zip64 end record")
            guard file.u32(record) == 0x0606_4b50 else { throw TorchCheckpointError.corrupt(path, "bad zip64 end record") }
            count = file.u64(record + 32)
            directorySize = file.u64(record + 40)
            directoryOffset = file.u64(record + 48)
        }
        try need(directoryOffset, directorySize, "central directory")
        // Every entry takes at least 46 bytes of the directory (a zip64 count may be any 64-bit value).
        guard count >= 0, count <= directorySize / 46 else {
            throw TorchCheckpointError.corrupt(path, "central directory claims \(count) entries in \(directorySize) bytes")
        }
        var entries: [String: Entry] = [:]
        var p = directoryOffset
        for _ in 0..<count {
            try need(p, 46, "central directory entry")
            guard file.u32(p) == 0x0201_4b50 else { throw TorchCheckpointError.corrupt(path, "bad central directory entry") }
            let method = file.u16(p + 10)
            var compressed = file.u32(p + 20)
            var uncompressed = file.u32(p + 24)
            let nameLength = file.u16(p + 28), extraLength = file.u16(p + 30), commentLength = file.u16(p + 32)
            var localOffset = file.u32(p + 42)
            try need(p + 46, nameLength + extraLength, "entry name")
            let name = String(decoding: file.bytes(p + 46, nameLength), as: UTF8.self)
            // zip64 extra field: the 8-byte values replace the saturated 4-byte ones, in this order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = file.u16(e), size = file.u16(e + 2)
                if id == 0x0001 {
                    var q = e + 4
                    if uncompressed == 0xFFFF_FFFF, q + 8 <= e + 4 + size { uncompressed = file.u64(q); q += 8 }
                    if compressed == 0xFFFF_FFFF, q + 8 <= e + 4 + size { compressed = file.u64(q); q += 8 }
                    if localOffset == 0xFFFF_FFFF, q + 8 <= e + 4 + size { localOffset = file.u64(q); q += 8 }
                }
                e += 4 + size
            }
            p = extraEnd + commentLength
            try need(localOffset, 30, "local header of \(name)")
            guard file.u32(localOffset) == 0x0403_4b50 else {
                throw TorchCheckpointError.corrupt(path, "bad local header of \(name)")
            }
            let dataOffset = localOffset + 30 + file.u16(localOffset + 26) + file.u16(localOffset + 28)
            guard method == 0 else {
                entries[name] = nil
                if name.hasSuffix(".pkl") || name.contains("/data/") {
                    throw TorchCheckpointError.unsupported(path, "compressed zip entry '\(name)' (method \(method))")
                }
                continue
            }
            guard compressed == uncompressed else { throw TorchCheckpointError.corrupt(path, "stored entry \(name) changes size") }
            try need(dataOffset, compressed, "data of \(name)")
            entries[name] = Entry(offset: dataOffset, length: compressed)
        }
        self.entries = entries
    }
}

// MARK: - pickle

/// A mutable dict (pickle memo entries share it by reference, SETITEMS mutates it).
final class PickleDict {
    var pairs: [(PickleValue, PickleValue)] = []

    func value(forKey key: String) -> PickleValue? {
        for (k, v) in pairs { if case .string(let s) = k, s == key { return v } }
        return nil
    }

    func set(_ key: PickleValue, _ value: PickleValue) {
        if case .string(let s) = key, let i = pairs.firstIndex(where: { if case .string(let t) = $0.0 { return t == s }; return false }) {
            pairs[i].1 = value
        } else {
            pairs.append((key, value))
        }
    }
}

final class PickleList {
    var items: [PickleValue] = []
}

enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(String, String)
    /// A storage reference; `elementOffset` is where a legacy storage view starts inside its root storage.
    case storage(key: String, dtype: DType?, typeName: String, elementOffset: Int)
    /// An integer wider than 64 bits (the legacy format's magic number), little-endian two's complement.
    case largeInt([UInt8])
    case tensor(TorchCheckpoint.TensorRecord)
    /// The result of a callable this reader does not model (kept only as a name; using it as data fails).
    case opaque(String)
}

/// The pickle virtual machine for the opcodes of protocols 0-5 that torch state_dicts use.
struct Unpickler {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var position = 0
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]
    /// Every storage the pickle referenced, with its element type.
    var storageTypes: [String: DType] = [:]

    init(bytes: UnsafeRawBufferPointer, path: String, position: Int = 0) {
        self.bytes = bytes
        self.path = path
        self.position = position
    }

    func corrupt(_ why: String) -> TorchCheckpointError { .corrupt(path, "data.pkl: \(why)") }

    mutating func read(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, position <= bytes.count - count else { throw corrupt("unexpected end of pickle") }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    mutating func byte() throws -> UInt8 { try read(1)[0] }

    mutating func uint(_ count: Int) throws -> Int {
        let b = try read(count)
        var v: UInt64 = 0
        for i in stride(from: count - 1, through: 0, by: -1) { v = v << 8 | UInt64(b[i]) }
        return Int(truncatingIfNeeded: v)
    }

    mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw corrupt("unterminated text line") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
        position = end + 1
        return text
    }

    mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw corrupt("stack underflow") }
        if let m = marks.last, stack.count < m { throw corrupt("stack popped past a mark") }
        return v
    }

    mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw corrupt("no mark") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func top() throws -> PickleValue {
        guard let v = stack.last else { throw corrupt("empty stack") }
        return v
    }

    mutating func load() throws -> PickleValue {
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                   // PROTO
            case 0x95: _ = try read(8)                                  // FRAME
            case 0x2E: return try pop()                                 // STOP
            case 0x28: marks.append(stack.count)                        // MARK
            case 0x30: _ = try pop()                                    // POP
            case 0x31: _ = try popMark()                                // POP_MARK
            case 0x32: stack.append(try top())                          // DUP
            case 0x4E: stack.append(.none)                              // NONE
            case 0x88: stack.append(.bool(true))                        // NEWTRUE
            case 0x89: stack.append(.bool(false))                       // NEWFALSE
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))   // BININT
            case 0x4B: stack.append(.int(try uint(1)))                  // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                  // BININT2
            case 0x8A, 0x8B:                                            // LONG1, LONG4
                let n = op == 0x8A ? try uint(1) : try uint(4)
                let b = try read(n)
                if n > 8 { stack.append(.largeInt(Array(b))); continue }
                var v: Int64 = 0
                for i in stride(from: n - 1, through: 0, by: -1) { v = v << 8 | Int64(b[i]) }
                if n > 0, n < 8, b[n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * n) }
                stack.append(.int(Int(v)))
            case 0x49:                                                  // INT (text)
                let text = try line()
                if text == "00" || text == "01" { stack.append(.bool(text == "01")) } else {
                    guard let v = Int(text) else { throw corrupt("bad INT '\(text)'") }
                    stack.append(.int(v))
                }
            case 0x4C:                                                  // LONG (text)
                let text = try line()
                guard let v = Int(text.hasSuffix("L") ? String(text.dropLast()) : text) else { throw corrupt("bad LONG") }
                stack.append(.int(v))
            case 0x47:                                                  // BINFLOAT (big-endian)
                let b = try read(8)
                var bits: UInt64 = 0
                for i in 0..<8 { bits = bits << 8 | UInt64(b[i]) }
                stack.append(.float(Double(bitPattern: bits)))
            case 0x46:                                                  // FLOAT (text)
                guard let v = Double(try line()) else { throw corrupt("bad FLOAT") }
                stack.append(.float(v))
            case 0x58, 0x8C, 0x8D:                                      // BINUNICODE, SHORT_, 8
                let n = op == 0x58 ? try uint(4) : op == 0x8C ? try uint(1) : try uint(8)
                stack.append(.string(String(decoding: try read(n), as: UTF8.self)))
            case 0x54, 0x55:                                            // BINSTRING, SHORT_BINSTRING
                let n = op == 0x54 ? try uint(4) : try uint(1)
                stack.append(.string(String(decoding: try read(n), as: UTF8.self)))
            case 0x42, 0x43, 0x8E:                                      // BINBYTES, SHORT_BINBYTES, BINBYTES8
                let n = op == 0x42 ? try uint(4) : op == 0x43 ? try uint(1) : try uint(8)
                stack.append(.bytes(Array(try read(n))))
            case 0x29: stack.append(.tuple([]))                         // EMPTY_TUPLE
            case 0x74: stack.append(.tuple(try popMark()))              // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                // TUPLE1
            case 0x86:                                                  // TUPLE2
                let b = try pop(), a = try pop()
                stack.append(.tuple([a, b]))
            case 0x87:                                                  // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                stack.append(.tuple([a, b, c]))
            case 0x5D: stack.append(.list(PickleList()))                // EMPTY_LIST
            case 0x6C:                                                  // LIST
                let list = PickleList()
                list.items = try popMark()
                stack.append(.list(list))
            case 0x61:                                                  // APPEND
                let v = try pop()
                guard case .list(let list) = try top() else { throw corrupt("APPEND to a non-list") }
                list.items.append(v)
            case 0x65:                                                  // APPENDS
                let items = try popMark()
                guard case .list(let list) = try top() else { throw corrupt("APPENDS to a non-list") }
                list.items.append(contentsOf: items)
            case 0x7D: stack.append(.dict(PickleDict()))                // EMPTY_DICT
            case 0x64:                                                  // DICT
                let items = try popMark()
                let dict = PickleDict()
                guard items.count % 2 == 0 else { throw corrupt("DICT with an odd item count") }
                for i in stride(from: 0, to: items.count, by: 2) { dict.set(items[i], items[i + 1]) }
                stack.append(.dict(dict))
            case 0x73:                                                  // SETITEM
                let v = try pop(), k = try pop()
                guard case .dict(let dict) = try top() else { throw corrupt("SETITEM on a non-dict") }
                dict.set(k, v)
            case 0x75:                                                  // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw corrupt("SETITEMS with an odd item count") }
                guard case .dict(let dict) = try top() else { throw corrupt("SETITEMS on a non-dict") }
                for i in stride(from: 0, to: items.count, by: 2) { dict.set(items[i], items[i + 1]) }
            case 0x8F: stack.append(.opaque("set"))                     // EMPTY_SET
            case 0x90: _ = try popMark()                                // ADDITEMS
            case 0x91: _ = try popMark(); stack.append(.opaque("frozenset"))   // FROZENSET
            case 0x63:                                                  // GLOBAL
                let module = try line(), name = try line()
                stack.append(.global(module, name))
            case 0x93:                                                  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw corrupt("STACK_GLOBAL without strings")
                }
                stack.append(.global(module, name))
            case 0x71: memo[try uint(1)] = try top()                    // BINPUT
            case 0x72: memo[try uint(4)] = try top()                    // LONG_BINPUT
            case 0x70:                                                  // PUT
                guard let i = Int(try line()) else { throw corrupt("bad PUT") }
                memo[i] = try top()
            case 0x94: memo[memo.count] = try top()                     // MEMOIZE
            case 0x68, 0x6A, 0x67:                                      // BINGET, LONG_BINGET, GET
                let i: Int
                if op == 0x68 { i = try uint(1) } else if op == 0x6A { i = try uint(4) } else {
                    guard let v = Int(try line()) else { throw corrupt("bad GET") }
                    i = v
                }
                guard let v = memo[i] else { throw corrupt("memo \(i) is empty") }
                stack.append(v)
            case 0x51:                                                  // BINPERSID
                stack.append(try persistentLoad(try pop()))
            case 0x52:                                                  // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args))
            case 0x81:                                                  // NEWOBJ
                let args = try pop(), cls = try pop()
                stack.append(try reduce(cls, args))
            case 0x92:                                                  // NEWOBJ_EX
                _ = try pop()
                let args = try pop(), cls = try pop()
                stack.append(try reduce(cls, args))
            case 0x62:                                                  // BUILD: state of objects is not needed
                _ = try pop()
            default:
                throw TorchCheckpointError.unsupported(path, String(format: "pickle opcode 0x%02x at byte %d", op, position - 1))
            }
        }
    }

    static let storageClasses: [String: DType] = [
        "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
        "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
        "ByteStorage": .uint8, "BoolStorage": .bool, "Float8_e4m3fnStorage": .float8e4m3,
        "Float8_e5m2Storage": .float8e5m2,
    ]

    /// torch's persistent id of a storage: ('storage', storage_type, key, location, numel), plus a sixth item in
    /// the legacy format: nil or a view (view_key, element offset, view size) of the root storage `key`.
    mutating func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        guard case .tuple(let items) = pid, items.count >= 5, case .string("storage") = items[0],
              case .string(let key) = items[2] else {
            throw corrupt("unexpected persistent id")
        }
        guard case .global(_, let typeName) = items[1] else { throw corrupt("storage type is not a class") }
        let dtype = Self.storageClasses[typeName]
        if let dtype { storageTypes[key] = dtype }
        var elementOffset = 0
        if items.count >= 6, case .tuple(let view) = items[5], view.count >= 2, case .int(let offset) = view[1] {
            elementOffset = offset
        }
        return .storage(key: key, dtype: dtype, typeName: typeName, elementOffset: elementOffset)
    }

    func ints(_ value: PickleValue, _ what: String) throws -> [Int] {
        guard case .tuple(let items) = value else { throw corrupt("\(what) is not a tuple") }
        return try items.map {
            guard case .int(let v) = $0 else { throw corrupt("\(what) holds a non-integer") }
            return v
        }
    }

    func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let module, let name) = callable else { return .opaque("call") }
        let arguments: [PickleValue]
        if case .tuple(let items) = args { arguments = items } else { arguments = [] }
        switch (module, name) {
        case ("collections", "OrderedDict"), ("builtins", "dict"), ("__builtin__", "dict"):
            let dict = PickleDict()
            if case .list(let list)? = arguments.first {
                for item in list.items { if case .tuple(let kv) = item, kv.count == 2 { dict.set(kv[0], kv[1]) } }
            }
            return .dict(dict)
        case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"):
            guard arguments.count >= 4, case .storage(let key, let dtype, let typeName, let base) = arguments[0],
                  case .int(let offset) = arguments[1] else {
                throw corrupt("\(name) with unexpected arguments")
            }
            guard let dtype else { throw TorchCheckpointError.unsupported(path, "tensor storage type \(typeName)") }
            let shape = try ints(arguments[2], "tensor size"), strides = try ints(arguments[3], "tensor stride")
            guard shape.count == strides.count else { throw corrupt("tensor size and stride differ in rank") }
            let (storageOffset, overflow) = base.addingReportingOverflow(offset)
            guard !overflow else { throw corrupt("tensor storage offset \(base) + \(offset) overflows") }
            return .tensor(TorchCheckpoint.TensorRecord(storageKey: key, dtype: dtype, storageOffset: storageOffset,
                                                        shape: shape, strides: strides))
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard let data = arguments.first else { throw corrupt("\(name) without data") }
            return data
        case ("torch._tensor", "_rebuild_from_type_v2"):
            guard arguments.count >= 3 else { throw corrupt("_rebuild_from_type_v2 with unexpected arguments") }
            return try reduce(arguments[0], arguments[2])
        case ("torch", "Size"):
            return arguments.first ?? .tuple([])
        case ("_codecs", "encode"):
            if case .string(let s)? = arguments.first { return .bytes(Array(s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })) }
            return .bytes([])
        default:
            return .opaque("\(module).\(name)")
        }
    }
}
