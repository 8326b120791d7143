import CLIPValidate
import Foundation
import Splatting
import Imaging
import PLY
import TorchShim
import XCTest
@testable import Pipeline

/// The gate's behaviour without scorer weights: the validators' data checks decide; scores are not invented.
final class ValidatorGateTests: XCTestCase {
    static func sharedFixtures() -> URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<6 {
            let c = dir.appendingPathComponent("shared/fixtures")
            if FileManager.default.fileExists(atPath: c.path) { return c }
            let sibling = dir.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
            if FileManager.default.fileExists(atPath: sibling.path) { return sibling }
            dir.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: "../shared/fixtures")
    }

    func gate() -> ValidatorGate {
        ValidatorGate(rasterizer: CPURasterizer(), alignment: nil, quality: nil, lpips: nil, tokenizer: nil, device: .cpu)
    }

    func testTooFewGaussiansFailTheDataChecks() throws {
        let n = 100
        let splat = GaussianSplat(positions: (0..<(3 * n)).map { Float($0 % 7) * 0.01 }, shDC: Array(repeating: 0.2, count: 3 * n),
                                  opacities: Array(repeating: 2, count: n), scales: Array(repeating: -4, count: 3 * n),
                                  rotations: (0..<(4 * n)).map { $0 % 4 == 0 ? 0.9 : 0.1 })
        let v = try gate().evaluate(splat, prompt: .text("a chair"), orientation: .yDown)
        XCTAssertFalse(v.passedChecks)
        XCTAssertEqual(v.score, 0)
        XCTAssertFalse(v.passes(minScore: 0.6))
        XCTAssertTrue(v.notes.joined().contains("data check"), "\(v.notes)")
    }

    func testRealSplatPassesChecksAndIsNotScoredWithoutWeights() throws {
        let splat = try PLYReader.read(contentsOf: Self.sharedFixtures().appendingPathComponent("ply/hamburger.ply"))
        let v = try gate().evaluate(splat, prompt: .text("a hamburger"), orientation: .yUp)
        XCTAssertTrue(v.passedChecks)
        XCTAssertNil(v.score, "no scorer weights: no score may be invented")
        XCTAssertTrue(v.passes(minScore: 0.6))
        let image = try Image(width: 1, height: 1, channels: 4, pixels: [1, 2, 3, 255])
        let w = try gate().evaluate(splat, prompt: .image(image), orientation: .yDown)
        XCTAssertNil(w.score)
        XCTAssertTrue(w.notes.joined().contains("image"), "\(w.notes)")
    }

    func testFailedChecksGateThePipeline() throws {
        final class Tiny: GaussianStage {
            let name = "tiny"
            func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
                GaussianSplat(positions: [0, 0, 0], shDC: [0, 0, 0], opacities: [1], scales: [-3, -3, -3], rotations: [1, 0, 0, 0])
            }
        }
        let p = GenerationPipeline(textToImage: nil, backgroundRemoval: nil, gaussians: Tiny(), validator: gate())
        let rgba = try Image(width: 2, height: 1, channels: 4, pixels: [9, 9, 9, 255, 0, 0, 0, 0])
        let out = try p.run(GenerationJob(prompt: .image(rgba), timeBudget: 0, maxAttempts: 1))
        XCTAssertTrue(out.gated)
        XCTAssertTrue(out.ply.isEmpty)
    }
}
