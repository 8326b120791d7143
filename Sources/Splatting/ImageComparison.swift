import Foundation

/// How far two renders of the same views are apart, on what the validator sees: colour clipped to [0, 1].
public struct ImageComparison: Sendable, CustomStringConvertible {
    /// Largest |a - b| over every clipped colour value.
    public let maxAbsDifference: Float
    /// Mean squared difference of the clipped colours.
    public let meanSquaredError: Double
    /// Colour values whose validator bytes (`UInt8(clip(x) * 255)`, truncated) differ.
    public let differingBytes: Int
    public let count: Int

    /// Peak signal-to-noise ratio for a peak of 1 in dB; infinite for identical images.
    public var psnr: Double { meanSquaredError > 0 ? 10 * log10(1 / meanSquaredError) : .infinity }

    /// Compares two equally long colour arrays.
    public init(_ a: [Float], _ b: [Float]) throws {
        guard a.count == b.count else {
            throw RasterizerError("cannot compare images of \(a.count) and \(b.count) values")
        }
        guard !a.isEmpty else { throw RasterizerError("cannot compare empty images") }
        var worst: Float = 0
        var squares = 0.0
        var bytes = 0
        for i in 0..<a.count {
            let x = Self.clip(a[i]), y = Self.clip(b[i])
            let d = abs(x - y)
            worst = max(worst, d)
            squares += Double(d) * Double(d)
            if UInt8(x * 255) != UInt8(y * 255) { bytes += 1 }
        }
        maxAbsDifference = worst
        meanSquaredError = squares / Double(a.count)
        differingBytes = bytes
        count = a.count
    }

    /// Compares renders view by view (same count and sizes).
    public init(views a: [RenderedView], _ b: [RenderedView]) throws {
        guard a.count == b.count else { throw RasterizerError("cannot compare \(a.count) views with \(b.count)") }
        for (index, (x, y)) in zip(a, b).enumerated() where x.width != y.width || x.height != y.height {
            throw RasterizerError("view \(index) is \(x.width)x\(x.height) in one render and \(y.width)x\(y.height) in the other")
        }
        try self.init(a.flatMap(\.rgb), b.flatMap(\.rgb))
    }

    @inline(__always)
    static func clip(_ value: Float) -> Float { value.isNaN ? 0 : min(max(value, 0), 1) }

    public var description: String {
        String(format: "max abs diff %.5f (%.2f/255), PSNR %.1f dB, %d of %d bytes differ", maxAbsDifference,
               maxAbsDifference * 255, psnr, differingBytes, count)
    }
}
