/// Text on its way through a tokenizers pipeline: the scalars and, for each, the offset (in scalars) in the
/// original input of the character it came from. tokenizers keeps these alignments; the one thing encoding depends
/// on is whether a piece's first character comes from offset 0 (Metaspace's prepend_scheme "first").
struct NormalizedText: Equatable, Sendable {
    var scalars: [Unicode.Scalar]
    var origins: [Int]

    init(scalars: [Unicode.Scalar], origins: [Int]) {
        self.scalars = scalars
        self.origins = origins
    }

    /// Original text starting at `offset` of the input.
    init(original: some Collection<Unicode.Scalar>, offset: Int = 0) {
        scalars = Array(original)
        origins = Array(offset..<(offset + scalars.count))
    }

    init() { self.init(scalars: [], origins: []) }

    var isEmpty: Bool { scalars.isEmpty }
    var count: Int { scalars.count }
    /// The first character comes from the start of the input.
    var startsInput: Bool { origins.first == 0 }

    subscript(range: Range<Int>) -> NormalizedText {
        NormalizedText(scalars: Array(scalars[range]), origins: Array(origins[range]))
    }

    mutating func append(_ scalar: Unicode.Scalar, origin: Int) {
        scalars.append(scalar)
        origins.append(origin)
    }

    mutating func append<S: Sequence<Unicode.Scalar>>(contentsOf newScalars: S, origin: Int) {
        for scalar in newScalars { append(scalar, origin: origin) }
    }

    mutating func append(_ other: NormalizedText) {
        scalars += other.scalars
        origins += other.origins
    }
}

extension Unicode.Scalar {
    /// The Unicode White_Space property (Rust's `char::is_whitespace`, regex `\s`), with an ASCII fast path.
    @inline(__always)
    var isWhiteSpace: Bool {
        value < 0x80 ? (value == 0x20 || (value >= 0x09 && value <= 0x0D)) : properties.isWhitespace
    }
}
