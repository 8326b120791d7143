/// Front-to-back compositing of one 16x16 tile.
///
/// Gaussian-major: each Gaussian of the tile's depth-sorted run updates the pixels of its bounding box,
/// eight pixels at a time. Pixels are independent, so every pixel still sees exactly gsplat's per-pixel
/// sequence: sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with delta = mean - pixel centre, skip sigma < 0,
/// alpha = min(0.999, o exp(-sigma)), skip alpha < 1/255, stop the pixel (without this Gaussian) when
/// T (1 - alpha) <= 1e-4, else add colour * alpha * T. The tile ends early once every pixel has stopped.
enum TileCompositor {
    static let size = 16
    typealias Lanes = SIMD8<Float>
    static let laneCount = 8
    static let lanePattern = Lanes(0, 1, 2, 3, 4, 5, 6, 7)

    static func draw(tileX: Int, tileY: Int, width: Int, height: Int,
                     records: UnsafeBufferPointer<SplatRecord>,
                     background: SIMD3<Float>,
                     rgbOut: UnsafeMutableBufferPointer<Float>, alphaOut: UnsafeMutableBufferPointer<Float>) {
        let x0 = tileX * size, y0 = tileY * size
        let cols = min(size, width - x0), rows = min(size, height - y0)
        let pixels = size * size
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * pixels) { state in
            let base = state.baseAddress!
            let transmittance = base, accR = base + pixels, accG = base + 2 * pixels, accB = base + 3 * pixels
            transmittance.initialize(repeating: 1, count: pixels)
            (base + pixels).initialize(repeating: 0, count: 3 * pixels)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: pixels) { doneState in
                // 1 marks a finished pixel; pixels outside the image start finished. (Float, not Int32:
                // float lane compares vectorise, integer ones did not.)
                let done = doneState.baseAddress!
                for p in 0..<pixels {
                    done[p] = (p / size < rows && p % size < cols) ? 0 : 1
                }
                var alive = rows * cols
                let chunkX = [lanePattern + Float(x0) + 0.5, lanePattern + Float(x0 + laneCount) + 0.5]

                gaussianLoop: for g in records {
                    guard let (rowLo, rowHi) = span(centre: g.meanY, reach: g.reachY, origin: y0),
                          let (colLo, colHi) = span(centre: g.meanX, reach: g.reachX, origin: x0) else { continue }
                    let left = colLo < laneCount, right = colHi >= laneCount
                    let dx = Lanes(repeating: g.meanX) - chunkX[0], dxRight = Lanes(repeating: g.meanX) - chunkX[1]
                    for row in rowLo...rowHi {
                        let dy = g.meanY - (Float(y0 + row) + 0.5)
                        let p = row * size
                        var stopped = 0
                        if left {
                            stopped += blend(g, dx: dx, dy: dy, t: transmittance + p, r: accR + p, gr: accG + p,
                                             b: accB + p, done: done + p)
                        }
                        if right {
                            let q = p + laneCount
                            stopped += blend(g, dx: dxRight, dy: dy, t: transmittance + q, r: accR + q, gr: accG + q,
                                             b: accB + q, done: done + q)
                        }
                        if stopped > 0 {
                            alive -= stopped
                            if alive == 0 { break gaussianLoop }
                        }
                    }
                }

                for row in 0..<rows {
                    for col in 0..<cols {
                        let p = row * size + col
                        let pixel = (y0 + row) * width + x0 + col
                        let t = transmittance[p]
                        rgbOut[3 * pixel] = accR[p] + t * background.x
                        rgbOut[3 * pixel + 1] = accG[p] + t * background.y
                        rgbOut[3 * pixel + 2] = accB[p] + t * background.z
                        alphaOut[pixel] = 1 - t
                    }
                }
            }
        }
    }

    /// Tile rows or columns (inclusive, 0..<16) whose pixel centres lie within `reach` of `centre`, or nil.
    /// Truncation instead of floor/ceil only ever widens the span (the lane test is exact).
    @inline(__always)
    static func span(centre: Float, reach: Float, origin: Int) -> (Int, Int)? {
        let lo = centre - reach - 0.5 - Float(origin)
        let hi = centre + reach - 0.5 - Float(origin)
        guard lo < Float(size), hi > -1 else { return nil }
        return (Int(max(lo, 0)), Int(min(hi, Float(size - 1))))
    }

    /// One Gaussian over eight pixels of a row. Returns how many of them stopped.
    @inline(__always)
    static func blend(_ g: SplatRecord, dx: Lanes, dy: Float,
                      t: UnsafeMutablePointer<Float>, r: UnsafeMutablePointer<Float>,
                      gr: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>,
                      done: UnsafeMutablePointer<Float>) -> Int {
        let doneFlags = UnsafeRawPointer(done).loadUnaligned(as: Lanes.self)
        let cdy2 = g.conicC * dy * dy
        let sigma = 0.5 * (g.conicA * dx * dx + cdy2) + g.conicB * dx * dy
        var active = (doneFlags .== 0) .& (sigma .>= 0) .& (sigma .<= g.sigmaLimit)
        if !any(active) { return 0 }
        let unclamped = g.opacity * FastExp.exp(-sigma)
        let alpha = unclamped.replacing(with: CPURasterizer.maxAlpha, where: unclamped .> CPURasterizer.maxAlpha)
        active = active .& (alpha .>= GaussianProjection.alphaThreshold)
        let tOld = UnsafeRawPointer(t).loadUnaligned(as: Lanes.self)
        let tNew = tOld * (1 - alpha)
        let stop = active .& (tNew .<= CPURasterizer.transmittanceStop)
        let blend = active .& .!stop
        var stopped = 0
        if any(stop) {
            let newFlags = doneFlags.replacing(with: 1, where: stop)
            UnsafeMutableRawPointer(done).storeBytes(of: newFlags, as: Lanes.self)
            stopped = Int(newFlags.sum() - doneFlags.sum())
        }
        if any(blend) {
            let vis = alpha * tOld
            @inline(__always) func accumulate(_ ptr: UnsafeMutablePointer<Float>, _ colour: Float) {
                let old = UnsafeRawPointer(ptr).loadUnaligned(as: Lanes.self)
                UnsafeMutableRawPointer(ptr).storeBytes(of: old.replacing(with: old + colour * vis, where: blend),
                                                        as: Lanes.self)
            }
            accumulate(r, g.red)
            accumulate(gr, g.green)
            accumulate(b, g.blue)
            UnsafeMutableRawPointer(t).storeBytes(of: tOld.replacing(with: tNew, where: blend), as: Lanes.self)
        }
        return stopped
    }
}

/// exp on eight lanes (Cephes expf: range reduction by ln 2, degree-6 polynomial, about 1 ulp), for
/// arguments in [-87, 0] (smaller ones and NaN are treated as -87). gsplat uses the GPU's __expf, itself
/// approximate, so a correctly rounded exp would be no closer to it.
enum FastExp {
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let x = x.replacing(with: -87, where: .!(x .>= -87))
        // k = round(x / ln 2) by the 1.5 * 2^23 trick; the integer sits in the low mantissa bits.
        let magic: Float = 12_582_912
        let kShifted = x * 1.442_695_04 + magic
        let k = kShifted - magic
        let r = x - k * 0.693_359_375 + k * 2.121_944_4e-4
        let z = r * r
        var p = 1.987_569_15e-4 * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let er = p * z + r + 1
        let kBits = unsafeBitCast(kShifted, to: SIMD8<Int32>.self) &- unsafeBitCast(SIMD8<Float>(repeating: magic),
                                                                                     to: SIMD8<Int32>.self)
        let scale = unsafeBitCast((kBits &+ 127) &<< 23, to: SIMD8<Float>.self)
        return er * scale
    }
}
