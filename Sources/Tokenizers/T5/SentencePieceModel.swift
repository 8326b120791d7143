/// Protocol-buffer wire format reading, as much as a sentencepiece `ModelProto` needs.
struct ProtobufReader {
    enum WireType: UInt64 { case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5 }

    private let bytes: [UInt8]
    private var position: Int
    private let end: Int
    private let context: String

    init(_ bytes: [UInt8], range: Range<Int>? = nil, context: String) {
        self.bytes = bytes
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
        self.context = context
    }

    private func fail(_ reason: String) -> TokenizerError {
        .malformed(what: context, reason: "\(reason) at byte \(position)")
    }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func nextField() throws -> (number: Int, wireType: WireType)? {
        guard position < end else { return nil }
        let key = try varint()
        guard let wireType = WireType(rawValue: key & 7) else { throw fail("unsupported wire type \(key & 7)") }
        guard key >> 3 > 0, key >> 3 <= UInt64(Int32.max) else { throw fail("invalid field number \(key >> 3)") }
        return (Int(key >> 3), wireType)
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw fail("truncated varint") }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw fail("varint longer than 10 bytes") }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func int32() throws -> Int32 { Int32(truncatingIfNeeded: try varint()) }
    mutating func bool() throws -> Bool { try varint() != 0 }

    mutating func fixed32() throws -> UInt32 {
        guard end - position >= 4 else { throw fail("truncated fixed32") }
        defer { position += 4 }
        return readUInt32LE(bytes, position)
    }

    mutating func float() throws -> Float { Float(bitPattern: try fixed32()) }

    /// The byte range of a length-delimited field's payload.
    mutating func lengthDelimited() throws -> Range<Int> {
        let length = try varint()
        guard length <= UInt64(end - position) else { throw fail("length \(length) runs past the end") }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }

    /// The bytes of a range `lengthDelimited()` returned.
    func payload(_ range: Range<Int>) -> ArraySlice<UInt8> { bytes[range] }

    mutating func string() throws -> String {
        let range = try lengthDelimited()
        guard let string = String(validating: bytes[range], as: UTF8.self) else { throw fail("string is not UTF-8") }
        return string
    }

    mutating func skip(_ wireType: WireType) throws {
        switch wireType {
        case .varint: _ = try varint()
        case .fixed64:
            guard end - position >= 8 else { throw fail("truncated fixed64") }
            position += 8
        case .lengthDelimited: _ = try lengthDelimited()
        case .fixed32: _ = try fixed32()
        }
    }

    func subreader(_ range: Range<Int>, context: String) -> ProtobufReader {
        ProtobufReader(bytes, range: range, context: context)
    }
}

/// The parts of sentencepiece's `ModelProto` (sentencepiece_model.proto) that encoding uses.
struct SentencePieceModel: Sendable {
    enum PieceType: Int32, Sendable { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    struct Piece: Sendable {
        var piece: String
        var score: Float
        var type: PieceType
    }

    var pieces: [Piece] = []
    // TrainerSpec (defaults as in the .proto)
    var modelType: Int32 = 1  // UNIGRAM
    var byteFallback = false
    var treatWhitespaceAsSuffix = false
    var eosID: Int32 = 2
    var padID: Int32 = -1
    // NormalizerSpec
    var precompiledCharsMap: [UInt8] = []
    var addDummyPrefix = true
    var removeExtraWhitespaces = true
    var escapeWhitespaces = true

    init(bytes: [UInt8]) throws {
        var reader = ProtobufReader(bytes, context: "spiece.model")
        while let field = try reader.nextField() {
            switch (field.number, field.wireType) {
            case (1, .lengthDelimited):
                var sub = reader.subreader(try reader.lengthDelimited(), context: "spiece.model piece \(pieces.count)")
                pieces.append(try Self.piece(&sub))
            case (2, .lengthDelimited):
                var sub = reader.subreader(try reader.lengthDelimited(), context: "spiece.model trainer_spec")
                try readTrainerSpec(&sub)
            case (3, .lengthDelimited):
                var sub = reader.subreader(try reader.lengthDelimited(), context: "spiece.model normalizer_spec")
                try readNormalizerSpec(&sub)
            default:
                try reader.skip(field.wireType)
            }
        }
        guard !pieces.isEmpty else { throw TokenizerError.malformed(what: "spiece.model", reason: "no pieces") }
    }

    private static func piece(_ reader: inout ProtobufReader) throws -> Piece {
        var piece = Piece(piece: "", score: 0, type: .normal)
        while let field = try reader.nextField() {
            switch (field.number, field.wireType) {
            case (1, .lengthDelimited): piece.piece = try reader.string()
            case (2, .fixed32): piece.score = try reader.float()
            case (3, .varint):
                let raw = try reader.int32()
                guard let type = PieceType(rawValue: raw) else {
                    throw TokenizerError.malformed(what: "spiece.model", reason: "unknown piece type \(raw)")
                }
                piece.type = type
            default: try reader.skip(field.wireType)
            }
        }
        return piece
    }

    private mutating func readTrainerSpec(_ reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch (field.number, field.wireType) {
            case (3, .varint): modelType = try reader.int32()
            case (24, .varint): treatWhitespaceAsSuffix = try reader.bool()
            case (35, .varint): byteFallback = try reader.bool()
            case (42, .varint): eosID = try reader.int32()
            case (43, .varint): padID = try reader.int32()
            default: try reader.skip(field.wireType)
            }
        }
    }

    private mutating func readNormalizerSpec(_ reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch (field.number, field.wireType) {
            case (2, .lengthDelimited): precompiledCharsMap = Array(reader.payload(try reader.lengthDelimited()))
            case (3, .varint): addDummyPrefix = try reader.bool()
            case (4, .varint): removeExtraWhitespaces = try reader.bool()
            case (5, .varint): escapeWhitespaces = try reader.bool()
            default: try reader.skip(field.wireType)
            }
        }
    }
}
