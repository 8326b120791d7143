import Splatting
import CLIPValidate
import PLY
import XCTest

final class ValidatorNormalizationTests: XCTestCase {
    func testActivationsFollowTheValidatorLoader() throws {
        let stored = GaussianSplat(
            positions: [0, 0, 0, 1, 2, 3],
            normals: [9, 9, 9, 9, 9, 9],
            shDC: [1, -1, 0, 10, 0, 0],
            shRest: [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
            shDegree: 1,
            opacities: [0, log(3)],
            scales: [0, log(2), -1, 0, 0, 0],
            rotations: [2, 0, 0, 0, 1, 1, 1, 1])
        let a = try ActivatedSplat(activating: stored)
        XCTAssertEqual(a.count, 2)
        XCTAssertEqual(a.opacities[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(a.opacities[1], 0.75, accuracy: 1e-6)
        XCTAssertEqual(a.scales[0], 1)
        XCTAssertEqual(a.scales[1], 2, accuracy: 1e-6)
        XCTAssertEqual(a.scales[2], Float(exp(-1.0)), accuracy: 1e-7)
        XCTAssertEqual(Array(a.rotations[0..<4]), [1, 0, 0, 0])
        XCTAssertEqual(Array(a.rotations[4..<8]), [0.5, 0.5, 0.5, 0.5])
        let c0 = ActivatedSplat.shC0
        XCTAssertEqual(Array(a.colors[0..<3]), [0.5 + c0, 0.5 - c0, 0.5])
        XCTAssertEqual(a.colors[3], 0.5 + 10 * c0, accuracy: 1e-6, "colours are not clamped")
        XCTAssertEqual(a.positions, stored.positions)
    }

    func testZeroQuaternionStaysZero() throws {
        let a = try ActivatedSplat(activating: GaussianSplat(positions: [0, 0, 0], shDC: [0, 0, 0], opacities: [0],
                                                             scales: [0, 0, 0], rotations: [0, 0, 0, 0]))
        XCTAssertEqual(a.rotations, [0, 0, 0, 0])
    }

    func testNormalisationOnAHandMadeSplat() throws {
        // Extents: x 2, y 1, z 4 -> factor 1.5 / 4; one mean over all nine coordinates: 7 / 9.
        let a = try ActivatedSplat(positions: [0, 0, 0, 2, 0, 0, 0, 1, 4],
                                   colors: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
                                   opacities: [0.3, 0.5, 0],
                                   scales: [1, 2, 3, 0.5, 0.5, 0.5, 4, 4, 4],
                                   rotations: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])
        let prepared = try ValidatorNormalization.prepare(a)
        XCTAssertEqual(prepared.scaleFactor, 0.375)
        XCTAssertEqual(prepared.centreOffset, 7.0 / 9.0, accuracy: 1e-7)
        let g = prepared.gaussians
        let expected: [Float] = [0, 0, 0, 2, 0, 0, 0, 1, 4].map { ($0 - Float(7.0 / 9.0)) * 0.375 }
        for (got, want) in zip(g.positions, expected) { XCTAssertEqual(got, want, accuracy: 1e-6) }
        XCTAssertEqual(g.scales, [1, 2, 3, 0.5, 0.5, 0.5, 4, 4, 4].map { $0 * 0.375 })
        XCTAssertEqual(g.opacities[0], 0.8, accuracy: 1e-6, "opacity / factor")
        XCTAssertEqual(g.opacities[1], 1, "clipped to 1")
        XCTAssertEqual(g.opacities[2], 0)
        XCTAssertEqual(g.colors, a.colors)
        XCTAssertEqual(g.rotations, a.rotations)
        // The new bounding box's largest side is the target.
        let zs = stride(from: 2, to: 9, by: 3).map { g.positions[$0] }
        XCTAssertEqual(zs.max()! - zs.min()!, 1.5, accuracy: 1e-6)
    }

    func testTheMeanIsOneScalarNotPerAxis() throws {
        let a = try ActivatedSplat(positions: [0, 10, 20, 1, 11, 21], colors: [0, 0, 0, 0, 0, 0], opacities: [1, 1],
                                   scales: [1, 1, 1, 1, 1, 1], rotations: [1, 0, 0, 0, 1, 0, 0, 0])
        let p = try ValidatorNormalization.prepare(a).gaussians.positions
        XCTAssertEqual(p.reduce(0, +), 0, accuracy: 1e-4, "all coordinates together are centred")
        XCTAssertLessThan(p[0] + p[3], -10, "x alone is not")
        XCTAssertGreaterThan(p[2] + p[5], 10, "z alone is not")
    }

    func testLargeObjectsGetMoreOpaqueAndTheTargetIsConfigurable() throws {
        let a = try ActivatedSplat(positions: [0, 0, 0, 3, 0, 0], colors: [0, 0, 0, 0, 0, 0], opacities: [0.2, 0.6],
                                   scales: [1, 1, 1, 1, 1, 1], rotations: [1, 0, 0, 0, 1, 0, 0, 0])
        let big = try ValidatorNormalization.prepare(a)
        XCTAssertEqual(big.scaleFactor, 0.5)
        XCTAssertEqual(big.gaussians.opacities, [0.4, 1])
        let custom = try ValidatorNormalization.prepare(a, targetExtent: 6)
        XCTAssertEqual(custom.scaleFactor, 2)
        XCTAssertEqual(custom.gaussians.opacities, [0.1, 0.3])
        XCTAssertEqual(custom.gaussians.scales, [2, 2, 2, 2, 2, 2])
    }

    func testDegenerateInputsAreRejected() throws {
        let empty = try ActivatedSplat(positions: [], colors: [], opacities: [], scales: [], rotations: [])
        XCTAssertThrowsError(try ValidatorNormalization.prepare(empty))
        let onePoint = try ActivatedSplat(positions: [1, 1, 1, 1, 1, 1], colors: [0, 0, 0, 0, 0, 0], opacities: [1, 1],
                                          scales: [1, 1, 1, 1, 1, 1], rotations: [1, 0, 0, 0, 1, 0, 0, 0])
        XCTAssertThrowsError(try ValidatorNormalization.prepare(onePoint)) { error in
            XCTAssertTrue("\(error)".contains("zero size"), "\(error)")
        }
        let nan = try ActivatedSplat(positions: [0, 0, 0, .nan, 1, 1], colors: [0, 0, 0, 0, 0, 0], opacities: [1, 1],
                                     scales: [1, 1, 1, 1, 1, 1], rotations: [1, 0, 0, 0, 1, 0, 0, 0])
        XCTAssertThrowsError(try ValidatorNormalization.prepare(nan))
        XCTAssertThrowsError(try ValidatorNormalization.prepare(onePoint, targetExtent: -1))
        XCTAssertThrowsError(try ActivatedSplat(positions: [0, 0], colors: [0, 0, 0], opacities: [1], scales: [1, 1, 1],
                                                rotations: [1, 0, 0, 0])) { error in
            XCTAssertTrue("\(error)".contains("positions"), "\(error)")
        }
        let short = GaussianSplat(positions: [0, 0, 0], shDC: [0, 0, 0], opacities: [0], scales: [0, 0, 0],
                                  rotations: [1, 0, 0])
        XCTAssertThrowsError(try ActivatedSplat(activating: short))
    }

    /// Activations and normalisation of the real sample against the validator's own code, evaluated in float64 and
    /// rounded to Float (scripts/clipvalidate_oracle.py). Tolerance 1.5e-7 x max(1, |x|): the validator's float32
    /// computation is <= 3.2e-8 off these values and this code <= 3e-8 (with 1 or 2 threads, MKL AVX2 and SSE4_2),
    /// about 0.5 ulp; 1.5e-7 is ~5x that (2-3 ulps at |x| ~0.7).
    static let gaussianTolerance: Float = 1.5e-7

    func testHamburgerMatchesTheValidator() throws {
        let splat = try Fixtures.hamburger()
        XCTAssertEqual(splat.count, ValidatorOracle.count)
        let activated = try ActivatedSplat(activating: splat)
        let prepared = try ValidatorNormalization.prepare(activated)
        XCTAssertEqual(prepared.scaleFactor, ValidatorOracle.scaling, accuracy: 1e-12)
        XCTAssertEqual(prepared.centreOffset, ValidatorOracle.mean, accuracy: 1e-7)
        for (k, i) in ValidatorOracle.samples.enumerated() {
            func check(_ got: [Float], _ want: [Float], _ width: Int, _ what: String, _ tolerance: Float) {
                for j in 0..<width {
                    let w = want[width * k + j]
                    XCTAssertEqual(got[width * i + j], w, accuracy: tolerance * max(1, abs(w)), "\(what) of Gaussian \(i)")
                }
            }
            check(activated.opacities, ValidatorOracle.activatedOpacities, 1, "activated opacity", Self.gaussianTolerance)
            check(activated.scales, ValidatorOracle.activatedScales, 3, "activated scale", Self.gaussianTolerance)
            check(activated.rotations, ValidatorOracle.activatedRotations, 4, "rotation", Self.gaussianTolerance)
            check(activated.colors, ValidatorOracle.activatedColors, 3, "colour", Self.gaussianTolerance)
            check(prepared.gaussians.positions, ValidatorOracle.positions, 3, "position", Self.gaussianTolerance)
            check(prepared.gaussians.scales, ValidatorOracle.scales, 3, "scale", Self.gaussianTolerance)
            check(prepared.gaussians.opacities, ValidatorOracle.opacities, 1, "opacity", Self.gaussianTolerance)
        }
    }
}
