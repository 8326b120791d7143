import Foundation

/// Bounds applied to every value before it is written, so a file never carries NaN or infinity
/// (the subnet's tools and renderers reject or mis-render them).
///
/// - NaN becomes 0 in every field.
/// - Every value is clamped to `±valueBound` (1e6), so +inf -> 1e6 and -inf -> -1e6.
/// - Opacity logits are clamped to `opacityLogit` (-20...20): fp32 sigmoid is already 0 or 1 to within
///   2e-9 there, so no renderable difference is lost, and `inverse_sigmoid(sigmoid(x))` overflow to inf
///   is caught.
/// - Log-scales are clamped to `logScale` (-20...10): exp(-20) ~ 2e-9 (a vanishing Gaussian) and
///   exp(10) ~ 2.2e4 units, far beyond any object in the unit cube.
public enum PLYValueLimits {
    public static let valueBound: Float = 1e6
    public static let opacityLogit: ClosedRange<Float> = -20...20
    public static let logScale: ClosedRange<Float> = -20...10

    @inline(__always)
    static func clamp(_ value: Float, _ lower: Float, _ upper: Float) -> Float {
        value.isNaN ? 0 : Swift.min(Swift.max(value, lower), upper)
    }
}

/// Writes a `GaussianSplat` as a binary little-endian 3DGS PLY: all properties `float`, header line 3
/// `element vertex N`, order `x y z [nx ny nz] f_dc_0..2 [f_rest_*] opacity scale_0..2 rot_0..3`.
/// The whole file is one buffer filled in a single pass (see `PLYValueLimits` for the clamping).
public struct PLYWriter: Sendable {
    /// Write `nx ny nz`: nil follows the splat (written iff it has normals); true writes zeros when it has none.
    public var includeNormals: Bool?
    /// SH degree to write (0...3): nil follows the splat; a higher degree pads with zeros, a lower one drops
    /// the higher bands (per colour channel, keeping the `f_rest` channel-major order).
    public var shDegree: Int?

    public init(includeNormals: Bool? = nil, shDegree: Int? = nil) {
        self.includeNormals = includeNormals
        self.shDegree = shDegree
    }

    /// The header text for `count` Gaussians written with `layout` (ends with "end_header\n").
    static func header(count: Int, layout: GaussianLayout) -> String {
        var text = "ply\nformat binary_little_endian 1.0\nelement vertex \(count)\n"
        for name in layout.propertyNames { text += "property float \(name)\n" }
        text += "end_header\n"
        return text
    }

    package func layout(for splat: GaussianSplat) throws -> GaussianLayout {
        let degree = shDegree ?? splat.shDegree
        guard (0...3).contains(degree) else { throw PLYError.invalidOptions("SH degree \(degree) is outside 0...3") }
        return GaussianLayout(hasNormals: includeNormals ?? (splat.normals != nil), shDegree: degree)
    }

    /// The complete PLY file.
    public func encode(_ splat: GaussianSplat) throws -> Data {
        try splat.validateLayout()
        return Self.encodeValidated(splat, layout: try layout(for: splat))
    }

    public func write(_ splat: GaussianSplat, to url: URL) throws {
        try encode(splat).write(to: url, options: .atomic)
    }

    /// Encodes a splat that already passed `validateLayout()`.
    package static func encodeValidated(_ splat: GaussianSplat, layout: GaussianLayout) -> Data {
        let headerBytes = Array(header(count: splat.count, layout: layout).utf8)
        let rowBytes = layout.columnCount * MemoryLayout<Float>.size
        let total = headerBytes.count + splat.count * rowBytes
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 16)
        headerBytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        fillBody(buffer + headerBytes.count, splat: splat, layout: layout)
        return Data(bytesNoCopy: buffer, count: total, deallocator: .custom { pointer, _ in pointer.deallocate() })
    }

    private static func fillBody(_ body: UnsafeMutableRawPointer, splat: GaussianSplat, layout: GaussianLayout) {
        let count = splat.count
        let width = layout.columnCount
        let bound = PLYValueLimits.valueBound
        let (opacityLow, opacityHigh) = (PLYValueLimits.opacityLogit.lowerBound, PLYValueLimits.opacityLogit.upperBound)
        let (scaleLow, scaleHigh) = (PLYValueLimits.logScale.lowerBound, PLYValueLimits.logScale.upperBound)
        let sourceRest = GaussianSplat.restCount(degree: splat.shDegree) / 3
        let targetRest = layout.restCount / 3
        let sharedRest = min(sourceRest, targetRest)

        @inline(__always) func put(_ row: UnsafeMutableRawPointer, _ column: Int, _ value: Float) {
            row.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: column * 4, as: UInt32.self)
        }

        splat.positions.withUnsafeBufferPointer { positions in
        splat.shDC.withUnsafeBufferPointer { dc in
        splat.shRest.withUnsafeBufferPointer { rest in
        splat.opacities.withUnsafeBufferPointer { opacities in
        splat.scales.withUnsafeBufferPointer { scales in
        splat.rotations.withUnsafeBufferPointer { rotations in
        (splat.normals ?? []).withUnsafeBufferPointer { normals in
            let hasSourceNormals = splat.normals != nil
            for i in 0..<count {
                let row = body + i * width * 4
                for k in 0..<3 { put(row, k, PLYValueLimits.clamp(positions[3 * i + k], -bound, bound)) }
                if layout.hasNormals {
                    for k in 0..<3 {
                        let value = hasSourceNormals ? normals[3 * i + k] : 0
                        put(row, layout.normalColumn + k, PLYValueLimits.clamp(value, -bound, bound))
                    }
                }
                for k in 0..<3 { put(row, layout.dcColumn + k, PLYValueLimits.clamp(dc[3 * i + k], -bound, bound)) }
                if targetRest > 0 {
                    let source = 3 * sourceRest * i
                    for channel in 0..<3 {
                        let column = layout.restColumn + channel * targetRest
                        for k in 0..<sharedRest {
                            put(row, column + k, PLYValueLimits.clamp(rest[source + channel * sourceRest + k], -bound, bound))
                        }
                        for k in sharedRest..<targetRest { put(row, column + k, 0) }
                    }
                }
                put(row, layout.opacityColumn, PLYValueLimits.clamp(opacities[i], opacityLow, opacityHigh))
                for k in 0..<3 { put(row, layout.scaleColumn + k, PLYValueLimits.clamp(scales[3 * i + k], scaleLow, scaleHigh)) }
                for k in 0..<4 { put(row, layout.rotationColumn + k, PLYValueLimits.clamp(rotations[4 * i + k], -bound, bound)) }
            }
        }}}}}}}
    }
}
