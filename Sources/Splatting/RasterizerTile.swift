/// Front-to-back compositing of one 16x16 tile.
///
/// Gaussian-major: each Gaussian of the tile's depth-sorted run visits, row by row, only the pixels whose
/// centres can lie inside its alpha >= 1/255 ellipse. Pixels are independent, so every pixel still sees
/// gsplat's per-pixel sequence: sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with delta = mean - pixel centre,
/// alpha = min(0.999, o exp(-sigma)), skip alpha < 1/255, stop the pixel (without this Gaussian) when
/// T (1 - alpha) <= 1e-4, else add colour * alpha * T. The tile ends early once every pixel has stopped.
/// (gsplat also skips sigma < 0; projection only yields positive-definite conics, for which that takes a
/// float rounding accident on a needle-thin ellipse, so the test is left out.)
///
/// exp(-sigma) is evaluated once per row and then carried along the row by multiplication in double.
/// That follows the exact quadratic rather than the float rounding of gsplat's per-pixel formula; the two
/// differ by a few 1e-6 at most (RasterizerTests), the same order as gsplat's own GPU rounding (FMA
/// contraction, fast __expf) differs from a CPU evaluation. Plain scalar code on purpose: Float
/// arithmetic is inlined even in debug builds, generic SIMD types are not (a SIMD8 version was 1.3x
/// faster in release but about 300x slower in debug).
enum TileCompositor {
    static let size = 16

    static func draw(tileX: Int, tileY: Int, width: Int, height: Int, records: UnsafeBufferPointer<SplatRecord>,
                     background: SIMD3<Float>,
                     rgbOut: UnsafeMutableBufferPointer<Float>, alphaOut: UnsafeMutableBufferPointer<Float>) {
        let x0 = tileX * size, y0 = tileY * size
        let cols = min(size, width - x0), rows = min(size, height - y0)
        let pixels = size * size
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * pixels) { state in
            let base = state.baseAddress!
            // Per pixel: transmittance (negated once the pixel has stopped) and colour sums.
            let transmittance = base, accR = base + pixels, accG = base + 2 * pixels, accB = base + 3 * pixels
            transmittance.initialize(repeating: 1, count: pixels)
            (base + pixels).initialize(repeating: 0, count: 3 * pixels)
            var alive = rows * cols

            gaussianLoop: for g in records {
                guard let (rowLo, rowHi) = rowSpan(g, y0: y0, rows: rows) else { continue }
                for row in rowLo...rowHi {
                    let dy = g.meanY - (Float(y0 + row) + 0.5)
                    guard let (colLo, colHi) = columnSpan(g, dy: dy, x0: x0, cols: cols) else { continue }
                    let cdy2 = g.conicC * dy * dy
                    // exp(-sigma) walks along the row by two products: one pixel to the right changes
                    // sigma by step = 0.5 a - a dx - b dy, and step itself by +a.
                    let dx = g.meanX - (Float(x0 + colLo) + 0.5)
                    let step = 0.5 * g.conicA - g.conicA * dx - g.conicB * dy
                    // Double, so that rounding does not pile up along the row.
                    var falloff = Double(FastExp.exp(-(0.5 * (g.conicA * dx * dx + cdy2) + g.conicB * dx * dy)))
                    var stepFactor = Double(FastExp.exp(-step))
                    let rowBase = row * size
                    for col in colLo...colHi {
                        defer {
                            falloff *= stepFactor
                            stepFactor *= g.stepDecay
                        }
                        let p = rowBase + col
                        let t = transmittance[p]
                        if t < 0 { continue }   // stopped
                        let weighted = g.opacity * Float(falloff)
                        let alpha = weighted > CPURasterizer.maxAlpha ? CPURasterizer.maxAlpha : weighted
                        if alpha < GaussianProjection.alphaThreshold { continue }
                        let next = t * (1 - alpha)
                        if next <= CPURasterizer.transmittanceStop {
                            transmittance[p] = -t
                            alive -= 1
                            if alive == 0 { break gaussianLoop }
                            continue
                        }
                        let vis = alpha * t
                        accR[p] += g.red * vis
                        accG[p] += g.green * vis
                        accB[p] += g.blue * vis
                        transmittance[p] = next
                    }
                }
            }

            for row in 0..<rows {
                for col in 0..<cols {
                    let p = row * size + col
                    let pixel = (y0 + row) * width + x0 + col
                    let t = abs(transmittance[p])
                    rgbOut[3 * pixel] = accR[p] + t * background.x
                    rgbOut[3 * pixel + 1] = accG[p] + t * background.y
                    rgbOut[3 * pixel + 2] = accB[p] + t * background.z
                    alphaOut[pixel] = 1 - t
                }
            }
        }
    }

    /// Tile rows (inclusive) whose pixel centres lie within reachY of the mean, or nil.
    @inline(__always)
    static func rowSpan(_ g: SplatRecord, y0: Int, rows: Int) -> (Int, Int)? {
        let lo = g.meanY - g.reachY - 0.5 - Float(y0)
        let hi = g.meanY + g.reachY - 0.5 - Float(y0)
        guard lo < Float(rows), hi > -1 else { return nil }
        // Truncation instead of ceil/floor only widens the span; the per-pixel test is exact.
        return (lo > 0 ? Int(lo) : 0, hi < Float(rows - 1) ? Int(hi) : rows - 1)
    }

    /// Tile columns (inclusive) of one row that can hold a pixel with sigma <= sigmaLimit; nil when none can.
    @inline(__always)
    static func columnSpan(_ g: SplatRecord, dy: Float, x0: Int, cols: Int) -> (Int, Int)? {
        guard g.conicA > 0 else { return (0, cols - 1) }
        // 0.5 a dx^2 + (b dy) dx + 0.5 c dy^2 - L <= 0.
        let bdy = g.conicB * dy
        let disc = bdy * bdy - g.conicA * (g.conicC * dy * dy - 2 * g.sigmaLimit)
        guard disc >= 0 else { return nil }
        let root = disc.squareRoot()
        // Pixel centre x + 0.5 = meanX - dx. sigmaLimit's margin covers the rounding here.
        let lo = g.meanX - (root - bdy) * g.inverseConicA - 0.5 - Float(x0)
        let hi = g.meanX + (root + bdy) * g.inverseConicA - 0.5 - Float(x0)
        guard lo < Float(cols), hi > -1 else { return nil }
        return (lo > 0 ? Int(lo) : 0, hi < Float(cols - 1) ? Int(hi) : cols - 1)
    }
}

/// exp (Cephes expf: range reduction by ln 2, degree-6 polynomial, about 1 ulp) for arguments in
/// [-87, 88]; arguments outside (and NaN) are clamped to that range. Inline so that the hot loop keeps its registers (a libm call
/// forces every vector register to be spilled). gsplat itself uses the GPU's approximate __expf.
enum FastExp {
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let x = x >= -87 ? (x <= 88 ? x : 88) : -87
        // k = round(x / ln 2) by the 1.5 * 2^23 trick.
        let magic: Float = 12_582_912
        let shifted = x * 1.442_695_04 + magic
        let k = shifted - magic
        let r = x - k * 0.693_359_375 + k * 2.121_944_4e-4
        var p: Float = 1.987_569_15e-4 * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let er = p * (r * r) + r + 1
        // 2^k from the integer sitting in the low mantissa bits of `shifted`.
        let kBits = Int32(bitPattern: shifted.bitPattern) &- Int32(bitPattern: magic.bitPattern)
        return er * Float(bitPattern: UInt32(bitPattern: (kBits &+ 127) &<< 23))
    }
}
