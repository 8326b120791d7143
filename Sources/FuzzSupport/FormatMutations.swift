import Foundation

/// PLY header mutations: element counts set to extremes, unknown or odd properties inserted, the format switched.
enum PLYMutations {
    static func mutate(_ bytes: inout [UInt8], random: inout FuzzRandom) -> String? {
        guard let end = find(Array("end_header".utf8), in: bytes) else { return nil }
        var header = String(decoding: bytes[..<end], as: UTF8.self)
        let body = Array(bytes[end...])
        var lines = header.components(separatedBy: "\n")
        let step: String
        switch random.below(4) {
        case 0:
            guard let index = lines.firstIndex(where: { $0.hasPrefix("element ") }) else { return nil }
            let words = lines[index].split(separator: " ")
            guard words.count == 3 else { return nil }
            let count = random.pick(Mutator.extremeNumberTexts)
            lines[index] = "element \(words[1]) \(count)"
            step = "element \(words[1]) count -> \(count)"
        case 1:
            let property = random.pick([
                "property float unknown_prop", "property quad q", "property list uchar int vertex_indices",
                "property list float float bad_list", "property list uint double l", "property double f_rest_0",
                "property float x", "property", "property list uchar", "property uchar f_dc_0",
            ])
            let index = 1 + random.below(max(lines.count - 1, 1))
            lines.insert(property, at: min(index, lines.count))
            step = "insert '\(property)' at header line \(index)"
        case 2:
            guard let index = lines.firstIndex(where: { $0.hasPrefix("format ") }) else { return nil }
            let format = random.pick(["ascii", "binary_big_endian", "binary_little_endian", "binary", "ascii 2.0"])
            lines[index] = "format \(format) 1.0"
            step = "format -> \(format)"
        default:
            let element = random.pick(["element face 4294967295", "element face 1", "element vertex 3", "element extra 0",
                                       "element face 9223372036854775807"])
            let index = 1 + random.below(max(lines.count - 1, 1))
            lines.insert(element, at: min(index, lines.count))
            if random.chance(50) { lines.insert("property list uchar int vertex_indices", at: min(index + 1, lines.count)) }
            step = "insert '\(element)' at header line \(index)"
        }
        header = lines.joined(separator: "\n")
        bytes = Array(header.utf8) + body
        return step
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        let limit = min(bytes.count - needle.count, 1 << 20)
        var i = 0
        while i <= limit {
            if bytes[i] == needle[0], Array(bytes[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}

/// PNG and JPEG header mutations: huge or zero dimensions, odd bit depths, colour types and component counts,
/// chunk/segment lengths set to extremes. PNG chunks get a correct CRC half the time so libpng reads past it.
enum ImageMutations {
    static func mutatePNG(_ bytes: inout [UInt8], mutator: Mutator, random: inout FuzzRandom) -> String? {
        let chunks = pngChunks(bytes)
        guard !chunks.isEmpty else { return nil }
        let step: String
        switch random.below(3) {
        case 0:
            guard let ihdr = chunks.first(where: { $0.type == "IHDR" }), ihdr.length >= 13 else { return nil }
            let field = random.below(4)
            if field < 2 {
                let value = random.pick([0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 65_535, 100_000, 1 << 20] as [UInt64])
                mutator.write(value, width: 4, bigEndian: true, into: &bytes, at: ihdr.data + 4 * field)
                step = "IHDR \(field == 0 ? "width" : "height") -> \(value)"
            } else {
                let value = UInt64(random.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 255] as [Int]))
                bytes[ihdr.data + 8 + (field - 2)] = UInt8(value)
                step = "IHDR \(field == 2 ? "bit depth" : "colour type") -> \(value)"
            }
            if random.chance(70) { fixCRC(&bytes, ihdr) }
        case 1:
            let chunk = random.pick(chunks)
            let value = random.pick(Mutator.extremeIntegers)
            mutator.write(value, width: 4, bigEndian: true, into: &bytes, at: chunk.data - 8)
            step = "\(chunk.type) length -> \(UInt32(truncatingIfNeeded: value))"
        default:
            // A byte of a chunk's data changed, CRC recomputed so the change reaches the decoder.
            let chunk = random.pick(chunks)
            guard chunk.length > 0 else { return nil }
            let at = chunk.data + random.below(chunk.length)
            bytes[at] = UInt8(truncatingIfNeeded: random.next())
            fixCRC(&bytes, chunk)
            step = "\(chunk.type) data byte \(at - chunk.data) changed, CRC fixed"
        }
        return step
    }

    struct Chunk {
        let type: String
        let data: Int
        let length: Int
    }

    static func pngChunks(_ bytes: [UInt8]) -> [Chunk] {
        var chunks: [Chunk] = []
        var p = 8
        while p + 12 <= bytes.count {
            let length = Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
            guard length <= bytes.count - p - 12 else { break }
            chunks.append(Chunk(type: String(decoding: bytes[(p + 4)..<(p + 8)], as: UTF8.self), data: p + 8, length: length))
            p += 12 + length
        }
        return chunks
    }

    static func fixCRC(_ bytes: inout [UInt8], _ chunk: Chunk) {
        let end = chunk.data + chunk.length
        guard end + 4 <= bytes.count else { return }
        let crc = CRC32.checksum(bytes[(chunk.data - 4)..<end])
        for i in 0..<4 { bytes[end + i] = UInt8(truncatingIfNeeded: crc >> UInt32(24 - 8 * i)) }
    }

    static func mutateJPEG(_ bytes: inout [UInt8], mutator: Mutator, random: inout FuzzRandom) -> String? {
        var segments: [(marker: UInt8, at: Int)] = []
        var p = 2
        while p + 4 <= bytes.count, bytes[p] == 0xFF {
            let marker = bytes[p + 1]
            segments.append((marker, p))
            if marker == 0xDA { break }   // entropy-coded data follows
            p += 2 + (Int(bytes[p + 2]) << 8 | Int(bytes[p + 3]))
        }
        guard !segments.isEmpty else { return nil }
        if let sof = segments.first(where: { (0xC0...0xCF).contains($0.marker) && ![0xC4, 0xC8, 0xCC].contains($0.marker) }),
           random.chance(60) {
            let field = random.below(4)
            switch field {
            case 0, 1:
                let value = random.pick([0, 1, 0xFFFF, 0x8000, 16_384] as [UInt64])
                mutator.write(value, width: 2, bigEndian: true, into: &bytes, at: sof.at + 5 + 2 * field)
                return "SOF \(field == 0 ? "height" : "width") -> \(value)"
            case 2:
                let value = UInt8(random.pick([0, 1, 2, 3, 4, 5, 255] as [Int]))
                if sof.at + 9 < bytes.count { bytes[sof.at + 9] = value }
                return "SOF component count -> \(value)"
            default:
                let value = UInt8(random.pick([0, 1, 2, 7, 8, 12, 16, 255] as [Int]))
                if sof.at + 4 < bytes.count { bytes[sof.at + 4] = value }
                return "SOF precision -> \(value)"
            }
        }
        let segment = random.pick(segments)
        let value = random.pick([0, 1, 2, 0xFFFF, 0x8000] as [UInt64])
        mutator.write(value, width: 2, bigEndian: true, into: &bytes, at: segment.at + 2)
        return String(format: "segment FF%02X length -> %d", segment.marker, Int(value))
    }
}

/// torch.save mutations: zip directory fields (entry count, sizes, offsets, name lengths) set to extremes, the
/// end record pointed at the zip64 record with an extreme value there, and integers of the pickle (tensor offsets,
/// sizes, strides, storage sizes) replaced by 64-bit extremes, the zip re-packed around the changed `data.pkl`.
enum ZipMutations {
    static func mutate(_ bytes: inout [UInt8], mutator: Mutator, random: inout FuzzRandom) -> String? {
        switch random.below(3) {
        case 0: return mutateFields(&bytes, mutator: mutator, random: &random)
        case 1: return redirectToZip64(&bytes, mutator: mutator, random: &random)
        default: return mutatePickle(&bytes, random: &random)
        }
    }

    static func lastIndex(of signature: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        return stride(from: bytes.count - 4, through: 0, by: -1).first { bytes[$0] == 0x50 && Array(bytes[$0..<($0 + 4)]) == signature }
    }

    /// The end record's count saturated (so readers use the zip64 record) and a zip64 field set to an extreme.
    static func redirectToZip64(_ bytes: inout [UInt8], mutator: Mutator, random: inout FuzzRandom) -> String? {
        guard let eocd = lastIndex(of: [0x50, 0x4B, 0x05, 0x06], in: bytes), eocd + 22 <= bytes.count,
              let record = lastIndex(of: [0x50, 0x4B, 0x06, 0x06], in: bytes), record + 56 <= bytes.count else { return nil }
        bytes[eocd + 10] = 0xFF
        bytes[eocd + 11] = 0xFF
        let field = random.pick([32, 40, 48])
        let value = random.pick(Mutator.extremeIntegers)
        mutator.write(value, width: 8, bigEndian: false, into: &bytes, at: record + field)
        return "zip64 redirect: record field +\(field) -> \(value)"
    }

    static let pickleExtremes: [Int64] = [0, -1, 1, Int64.max, Int64.min, Int64.max - 1, 1 << 31, 1 << 32, 1 << 40, 1 << 62,
                                          -(1 << 40)]

    /// One integer opcode of the pickle (BININT1/2/4, LONG1) replaced by a LONG1 holding a 64-bit extreme.
    static func mutatePickle(_ bytes: inout [UInt8], random: inout FuzzRandom) -> String? {
        func replaceInteger(_ pickle: inout [UInt8]) -> String? {
            var candidates: [(at: Int, length: Int)] = []
            var i = 0
            while i < pickle.count {
                switch pickle[i] {
                case 0x4B: candidates.append((i, 2))
                case 0x4D: candidates.append((i, 3))
                case 0x4A: candidates.append((i, 5))
                case 0x8A where i + 1 < pickle.count: candidates.append((i, 2 + Int(pickle[i + 1])))
                default: break
                }
                i += 1
            }
            candidates = candidates.filter { $0.at + $0.length <= pickle.count }
            guard !candidates.isEmpty else { return nil }
            let chosen = random.pick(candidates)
            let value = random.pick(pickleExtremes)
            let long1: [UInt8] = [0x8A, 0x08] + withUnsafeBytes(of: value.littleEndian) { Array($0) }
            pickle.replaceSubrange(chosen.at..<(chosen.at + chosen.length), with: long1)
            return "pickle integer at \(chosen.at) -> \(value)"
        }
        if bytes.first == 0x80 { return replaceInteger(&bytes).map { "legacy " + $0 } }
        guard var entries = ZipArchive.entries(bytes),
              let index = entries.firstIndex(where: { $0.name.hasSuffix("data.pkl") }) else { return nil }
        guard let step = replaceInteger(&entries[index].data) else { return nil }
        bytes = ZipArchive.pack(entries)
        return "data.pkl " + step + " (zip re-packed)"
    }

    static func mutateFields(_ bytes: inout [UInt8], mutator: Mutator, random: inout FuzzRandom) -> String? {
        // (signature, [(field offset, width)])
        let layouts: [([UInt8], [(Int, Int)])] = [
            ([0x50, 0x4B, 0x05, 0x06], [(8, 2), (10, 2), (12, 4), (16, 4)]),
            ([0x50, 0x4B, 0x01, 0x02], [(10, 2), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4)]),
            ([0x50, 0x4B, 0x03, 0x04], [(18, 4), (22, 4), (26, 2), (28, 2)]),
            ([0x50, 0x4B, 0x06, 0x06], [(24, 8), (32, 8), (40, 8), (48, 8)]),
            ([0x50, 0x4B, 0x06, 0x07], [(8, 8)]),
        ]
        var candidates: [(at: Int, width: Int)] = []
        for (signature, fields) in layouts {
            var i = 0
            while i + 4 <= bytes.count {
                if bytes[i] == 0x50, Array(bytes[i..<(i + 4)]) == signature {
                    for (offset, width) in fields where i + offset + width <= bytes.count {
                        candidates.append((i + offset, width))
                    }
                }
                i += 1
            }
        }
        guard !candidates.isEmpty else { return nil }
        let field = random.pick(candidates)
        let value = random.pick(Mutator.extremeIntegers)
        mutator.write(value, width: field.width, bigEndian: false, into: &bytes, at: field.at)
        return "zip field at \(field.at) (\(field.width) bytes) -> \(value)"
    }
}

/// Reads and writes the stored (uncompressed) zip archives torch.save writes, for re-packing a changed entry.
enum ZipArchive {
    struct Entry {
        var name: String
        var method: UInt16
        var data: [UInt8]
    }

    static func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
    static func u32(_ b: [UInt8], _ at: Int) -> Int { u16(b, at) | u16(b, at + 2) << 16 }

    /// The entries in directory order, or nil when the archive is not a plain (non-zip64) one this can read.
    static func entries(_ b: [UInt8]) -> [Entry]? {
        guard let eocd = ZipMutations.lastIndex(of: [0x50, 0x4B, 0x05, 0x06], in: b), eocd + 22 <= b.count else { return nil }
        let count = u16(b, eocd + 10)
        var p = u32(b, eocd + 16)
        var entries: [Entry] = []
        for _ in 0..<count {
            guard p + 46 <= b.count, u32(b, p) == 0x0201_4b50 else { return nil }
            let method = UInt16(u16(b, p + 10))
            let size = u32(b, p + 20)
            let nameLength = u16(b, p + 28), extra = u16(b, p + 30), comment = u16(b, p + 32)
            let local = u32(b, p + 42)
            guard size != 0xFFFF_FFFF, local != 0xFFFF_FFFF, p + 46 + nameLength <= b.count, local + 30 <= b.count else { return nil }
            let name = String(decoding: b[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            let dataStart = local + 30 + u16(b, local + 26) + u16(b, local + 28)
            guard dataStart + size <= b.count else { return nil }
            entries.append(Entry(name: name, method: method, data: Array(b[dataStart..<(dataStart + size)])))
            p += 46 + nameLength + extra + comment
        }
        return entries
    }

    /// A stored archive of `entries`, each entry's data aligned to 64 bytes as torch.save aligns it.
    static func pack(_ entries: [Entry]) -> [UInt8] {
        func le(_ v: Int, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        var out: [UInt8] = []
        var central: [UInt8] = []
        for entry in entries {
            let name = Array(entry.name.utf8)
            let crc = Int(CRC32.checksum(entry.data[...]))
            let offset = out.count
            let unpadded = offset + 30 + name.count + 4
            let pad = (64 - unpadded % 64) % 64
            let common = le(20, 2) + le(0, 2) + le(Int(entry.method), 2) + le(0, 4) + le(crc, 4)
                + le(entry.data.count, 4) + le(entry.data.count, 4) + le(name.count, 2)
            out += le(0x0403_4b50, 4) + common + le(4 + pad, 2) + name
            out += le(0x1234, 2) + le(pad, 2) + [UInt8](repeating: 0, count: pad) + entry.data
            central += le(0x0201_4b50, 4) + le(20, 2) + common + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4)
                + le(offset, 4) + name
        }
        let directoryOffset = out.count
        out += central
        out += le(0x0605_4b50, 4) + le(0, 2) + le(0, 2) + le(entries.count, 2) + le(entries.count, 2)
            + le(central.count, 4) + le(directoryOffset, 4) + le(0, 2)
        return out
    }
}

/// CRC-32 (the PNG/zip polynomial), for keeping mutated PNG chunks checksum-valid.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
