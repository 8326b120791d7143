import CLIPValidate
import Foundation
import Splatting
import XCTest

final class RasterizerTests: XCTestCase {
    private let background = SIMD3<Float>(0.2, 0.4, 0.6)

    /// Looks down +Z from the origin; the principal point sits on the centre of pixel (32, 32).
    private func frontCamera(width: Int = 64, height: Int = 64) -> Camera {
        Camera(rotationRows: (SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)), translation: .zero,
               fx: 100, fy: 100, cx: 32.5, cy: 32.5, width: width, height: height, near: 0.01, far: 100)
    }

    private struct Blob {
        var position: SIMD3<Float>
        var scale: Float
        var opacity: Float
        var color: SIMD3<Float>
    }

    private func scene(_ blobs: [Blob]) throws -> PreparedSplat {
        PreparedSplat(unnormalized: try ActivatedSplat(
            positions: blobs.flatMap { [$0.position.x, $0.position.y, $0.position.z] },
            colors: blobs.flatMap { [$0.color.x, $0.color.y, $0.color.z] },
            opacities: blobs.map(\.opacity),
            scales: blobs.flatMap { [$0.scale, $0.scale, $0.scale] },
            rotations: blobs.flatMap { _ in [Float(1), 0, 0, 0] }))
    }

    private func render(_ blobs: [Blob]) throws -> RenderedView {
        try CPURasterizer().render(splat: try scene(blobs), cameras: [frontCamera()], background: background)[0]
    }

    private func pixel(_ view: RenderedView, _ x: Int, _ y: Int) -> SIMD3<Float> {
        let p = 3 * (y * view.width + x)
        return SIMD3(view.rgb[p], view.rgb[p + 1], view.rgb[p + 2])
    }

    private func assertClose(_ a: SIMD3<Float>, _ b: SIMD3<Float>, _ tolerance: Float = 1e-6, _ message: String = "",
                             file: StaticString = #filePath, line: UInt = #line) {
        for k in 0..<3 { XCTAssertEqual(a[k], b[k], accuracy: tolerance, message, file: file, line: line) }
    }

    func testCentreOfOneGaussianBlendsItsOpacityOverTheBackground() throws {
        let colour = SIMD3<Float>(1, 0.2, 0.1)
        let view = try render([Blob(position: SIMD3(0, 0, 5), scale: 0.05, opacity: 0.6, color: colour)])
        assertClose(pixel(view, 32, 32), colour * 0.6 + background * 0.4)
        XCTAssertEqual(view.alpha[32 * 64 + 32], 0.6, accuracy: 1e-6)
        assertClose(pixel(view, 0, 0), background, 0, "far corner is background")
        XCTAssertEqual(view.alpha[0], 0)
    }

    func testFalloffIsTheDilatedGaussianAndSymmetric() throws {
        // 2D standard deviation f * s / z = 1 px; classic mode adds 0.3 to the variance.
        let colour = SIMD3<Float>(0.9, 0.9, 0.1)
        let view = try render([Blob(position: SIMD3(0, 0, 5), scale: 0.05, opacity: 0.6, color: colour)])
        for k in 1...3 {
            let alpha = Float(0.6 * exp(-0.5 * Double(k * k) / 1.3))
            let expected = colour * alpha + background * (1 - alpha)
            for (x, y) in [(32 + k, 32), (32 - k, 32), (32, 32 + k), (32, 32 - k)] {
                assertClose(pixel(view, x, y), expected, 2e-6, "offset \(k)")
            }
            // Equal up to float rounding (exp is carried along each row by multiplication).
            assertClose(pixel(view, 32 + k, 32), pixel(view, 32 - k, 32), 5e-7)
            assertClose(pixel(view, 32, 32 + k), pixel(view, 32 + k, 32), 5e-7)
        }
        let diagonal = Float(0.6 * exp(-0.5 * 2 / 1.3))
        assertClose(pixel(view, 33, 33), colour * diagonal + background * (1 - diagonal), 2e-6)
        // At 4 px alpha = 0.6 exp(-8 / 2.6) < 1/255: skipped entirely.
        assertClose(pixel(view, 36, 32), background, 0)
        assertClose(pixel(view, 32, 28), background, 0)
    }

    func testGaussiansOutsideTheClipRangeAreCulled() throws {
        for z: Float in [-5, 0.005, 150] {
            let view = try render([Blob(position: SIMD3(0, 0, z), scale: 0.05, opacity: 0.9, color: SIMD3(1, 0, 0))])
            XCTAssertTrue(view.alpha.allSatisfy { $0 == 0 }, "z = \(z)")
            assertClose(pixel(view, 32, 32), background, 0, "z = \(z)")
        }
    }

    func testOverlappingGaussiansCompositeFrontToBack() throws {
        let red = Blob(position: SIMD3(0, 0, 5), scale: 0.05, opacity: 0.5, color: SIMD3(1, 0, 0))
        let blue = Blob(position: SIMD3(0, 0, 8), scale: 0.08, opacity: 0.5, color: SIMD3(0, 0, 1))
        let redInFront = red.color * 0.5 + blue.color * 0.25 + background * 0.25
        assertClose(pixel(try render([red, blue]), 32, 32), redInFront)
        assertClose(pixel(try render([blue, red]), 32, 32), redInFront, 0, "order in the file does not matter")
        var nearBlue = blue, farRed = red
        nearBlue.position.z = 5
        nearBlue.scale = 0.05
        farRed.position.z = 8
        farRed.scale = 0.08
        assertClose(pixel(try render([farRed, nearBlue]), 32, 32), blue.color * 0.5 + red.color * 0.25 + background * 0.25)
    }

    func testAPixelStopsBeforeTheGaussianThatWouldSaturateIt() throws {
        // alpha is capped at 0.999: after the first Gaussian T = 0.001, the second would take it to 1e-6 <= 1e-4.
        let blobs = [Blob(position: SIMD3(0, 0, 5), scale: 0.05, opacity: 1, color: SIMD3(1, 0, 0)),
                     Blob(position: SIMD3(0, 0, 6), scale: 0.06, opacity: 1, color: SIMD3(0, 1, 0)),
                     Blob(position: SIMD3(0, 0, 7), scale: 0.07, opacity: 1, color: SIMD3(0, 0, 1))]
        let view = try render(blobs)
        let t: Float = 1 - 0.999
        assertClose(pixel(view, 32, 32), SIMD3(0.999, 0, 0) + background * t)
        XCTAssertEqual(view.alpha[32 * 64 + 32], 0.999, accuracy: 1e-6)
    }

    func testGaussiansFainterThanOneLevelAreDropped() throws {
        let faint = try render([Blob(position: SIMD3(0, 0, 5), scale: 0.05, opacity: 0.0035, color: SIMD3(1, 1, 1))])
        XCTAssertTrue(faint.alpha.allSatisfy { $0 == 0 })
        let visible = try render([Blob(position: SIMD3(0, 0, 5), scale: 0.05, opacity: 0.005, color: SIMD3(1, 1, 1))])
        XCTAssertEqual(visible.alpha[32 * 64 + 32], 0.005, accuracy: 1e-7)
    }

    func testAnEmptySplatRendersBackground() throws {
        let empty = PreparedSplat(unnormalized: try ActivatedSplat(positions: [], colors: [], opacities: [], scales: [],
                                                                   rotations: []))
        let views = try CPURasterizer().render(splat: empty, cameras: [frontCamera(width: 20, height: 10)],
                                               background: background)
        XCTAssertEqual(views.count, 1)
        XCTAssertEqual(views[0].rgb.count, 20 * 10 * 3)
        XCTAssertTrue(views[0].alpha.allSatisfy { $0 == 0 })
        assertClose(pixel(views[0], 19, 9), background, 0)
    }

    /// The tiled, Gaussian-major renderer against a direct per-pixel transcription of gsplat's loop, on random
    /// scenes: anisotropic and tiny to tile-spanning Gaussians, some faint, some off-screen or behind a camera,
    /// colours outside [0, 1], an image size that is not a multiple of the tile size.
    func testTiledRendererMatchesAPerPixelReference() throws {
        for seed: UInt64 in [17, 18, 19] {
            let splat = try randomScene(seed: seed, count: 400)
            let settings = RenderSettings(width: 70, height: 45, thetasDegrees: [0, 100, 215],
                                          phisDegrees: [-15, 20, -60], radius: 2)
            let cameras = try ValidatorCameras.make(settings)
            let views = try CPURasterizer().render(splat: splat, cameras: cameras, background: background)
            XCTAssertEqual(views.count, 3)
            for (camera, view) in zip(cameras, views) {
                let reference = ReferenceRasterizer.render(splat, camera: camera, background: background)
                XCTAssertEqual(view.width, 70)
                XCTAssertEqual(view.height, 45)
                var worst: Float = 0
                for i in 0..<reference.rgb.count { worst = max(worst, abs(view.rgb[i] - reference.rgb[i])) }
                for i in 0..<reference.alpha.count { worst = max(worst, abs(view.alpha[i] - reference.alpha[i])) }
                XCTAssertLessThan(worst, 1e-5, "seed \(seed)")
                XCTAssertGreaterThan(view.alpha.filter { $0 > 0.5 }.count, 300, "the scene is actually drawn")
            }
        }
    }

    func testEightBitImageTruncatesLikeTheValidator() throws {
        let view = try RenderedView(width: 2, height: 2, rgb: [0.999, 1.5, -0.2, 0.5, 0.0039, 1, .nan, 0.75, 0.2,
                                                                0.3, 0.6, 0.9], alpha: [1, 1, 1, 1])
        XCTAssertEqual(view.rgb8, [254, 255, 0, 127, 0, 255, 0, 191, 51, 76, 153, 229])
    }

    func testBadInputsAreRejected() throws {
        let splat = try scene([Blob(position: SIMD3(0, 0, 5), scale: 0.05, opacity: 0.5, color: SIMD3(1, 1, 1))])
        var noPixels = frontCamera()
        noPixels.width = 0
        XCTAssertThrowsError(try CPURasterizer().render(splat: splat, cameras: [noPixels], background: background))
        var badLens = frontCamera()
        badLens.fx = .nan
        XCTAssertThrowsError(try CPURasterizer().render(splat: splat, cameras: [badLens], background: background))
        XCTAssertThrowsError(try CPURasterizer().render(splat: splat, cameras: [frontCamera()],
                                                        background: SIMD3(.nan, 0, 0)))
        XCTAssertThrowsError(try RenderedView(width: 2, height: 2, rgb: [0, 0, 0], alpha: [0, 0, 0, 0]))
        XCTAssertEqual(try CPURasterizer().render(splat: splat, cameras: [], background: background).count, 0)
    }
}

/// gsplat's per-pixel loop written out directly: every Gaussian binned to the pixel's tile, in depth order.
enum ReferenceRasterizer {
    static func render(_ splat: PreparedSplat, camera: Camera, background: SIMD3<Float>) -> (rgb: [Float], alpha: [Float]) {
        let g = splat.gaussians
        var items: [(depth: Float, index: Int, projected: ProjectedGaussian)] = []
        for i in 0..<g.count {
            let projected = GaussianProjection.project(
                position: SIMD3(g.positions[3 * i], g.positions[3 * i + 1], g.positions[3 * i + 2]),
                scale: SIMD3(g.scales[3 * i], g.scales[3 * i + 1], g.scales[3 * i + 2]),
                rotation: SIMD4(g.rotations[4 * i], g.rotations[4 * i + 1], g.rotations[4 * i + 2], g.rotations[4 * i + 3]),
                opacity: g.opacities[i], camera: camera)
            if let projected { items.append((projected.depth, i, projected)) }
        }
        items.sort { ($0.depth, $0.index) < ($1.depth, $1.index) }
        let tilesX = (camera.width + 15) / 16, tilesY = (camera.height + 15) / 16
        let ranges = items.map { GaussianProjection.tileRange(of: $0.projected, tileSize: 16, tilesX: tilesX, tilesY: tilesY) }
        var rgb = [Float](repeating: 0, count: camera.width * camera.height * 3)
        var alphaOut = [Float](repeating: 0, count: camera.width * camera.height)
        for y in 0..<camera.height {
            for x in 0..<camera.width {
                var t: Float = 1
                var acc = SIMD3<Float>.zero
                for (k, item) in items.enumerated() {
                    let r = ranges[k]
                    guard x / 16 >= r.min.x, x / 16 < r.max.x, y / 16 >= r.min.y, y / 16 < r.max.y else { continue }
                    let conic = item.projected.conic
                    let dx = item.projected.mean.x - (Float(x) + 0.5), dy = item.projected.mean.y - (Float(y) + 0.5)
                    let sigma = 0.5 * (conic.x * dx * dx + conic.z * dy * dy) + conic.y * dx * dy
                    let alpha = min(0.999, g.opacities[item.index] * exp(-sigma))
                    if sigma < 0 || alpha < 1.0 / 255.0 { continue }
                    let next = t * (1 - alpha)
                    if next <= 1e-4 { break }
                    let c = SIMD3(g.colors[3 * item.index], g.colors[3 * item.index + 1], g.colors[3 * item.index + 2])
                    acc += c * (alpha * t)
                    t = next
                }
                let p = y * camera.width + x
                rgb[3 * p] = acc.x + t * background.x
                rgb[3 * p + 1] = acc.y + t * background.y
                rgb[3 * p + 2] = acc.z + t * background.z
                alphaOut[p] = 1 - t
            }
        }
        return (rgb, alphaOut)
    }
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
}
