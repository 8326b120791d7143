import Foundation
import Imaging
import PLY
import XCTest
@testable import Pipeline

/// The job runner with fake stages (tests only): gate, deadline-aware best-of-N, missing stages.
final class GenerationPipelineTests: XCTestCase {
    final class FakeText: TextToImageStage {
        let name = "fake-t2i"
        var calls = 0
        func generateImage(prompt: String, seed: UInt64, steps: Int?) throws -> Image {
            calls += 1
            return try Image(width: 4, height: 4, channels: 3, pixels: Array(repeating: 200, count: 48))
        }
    }

    final class FakeRemover: BackgroundRemovalStage {
        let name = "fake-bg"
        func removeBackground(_ image: Image) throws -> Image {
            var px = image.toRGBA().pixels
            for i in stride(from: 3, to: px.count, by: 4) { px[i] = i % 8 == 3 ? 255 : 0 }
            return try Image(width: image.width, height: image.height, channels: 4, pixels: px)
        }
    }

    final class FakeGaussians: GaussianStage {
        let name = "fake-3d"
        var seeds: [UInt64] = []
        var delay: Double = 0
        func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
            seeds.append(seed)
            if delay > 0 { Thread.sleep(forTimeInterval: delay) }
            let n = 10 + Int(seed % 5)
            return GaussianSplat(positions: Array(repeating: 0, count: 3 * n), shDC: Array(repeating: 0, count: 3 * n),
                                 opacities: Array(repeating: 1, count: n), scales: Array(repeating: -3, count: 3 * n),
                                 rotations: Array(repeating: 0.5, count: 4 * n))
        }
    }

    /// Scores each attempt from a script: attempt k gets scores[k].
    final class ScriptedValidator: ValidationStage {
        let name = "scripted"
        var scores: [Double]
        var calls = 0
        init(_ scores: [Double]) { self.scores = scores }
        func evaluate(_ splat: GaussianSplat, prompt: Prompt, orientation: SplatOrientation) throws -> ValidationVerdict {
            defer { calls += 1 }
            return ValidationVerdict(score: scores[min(calls, scores.count - 1)], alignment: 0.5, passedChecks: true)
        }
    }

    func rgbaImage() throws -> Image {
        try Image(width: 2, height: 2, channels: 4, pixels: [255, 0, 0, 255, 0, 0, 0, 0, 0, 255, 0, 255, 0, 0, 0, 0])
    }

    func testGoodFirstAttemptReturnsPLY() throws {
        let g = FakeGaussians()
        let p = GenerationPipeline(textToImage: FakeText(), backgroundRemoval: FakeRemover(), gaussians: g,
                                   validator: ScriptedValidator([0.8]))
        let out = try p.run(GenerationJob(prompt: .text("a red car"), seed: 7))
        XCTAssertFalse(out.gated)
        XCTAssertEqual(out.attempts.count, 1)
        XCTAssertEqual(g.seeds, [7])
        let parsed = try PLYReader.read(out.ply)
        XCTAssertEqual(parsed.count, out.splat.count)
        XCTAssertEqual(out.timings.entries.map(\.name), ["text-to-image", "background", "gaussians", "validate", "ply"])
    }

    func testBadScoresRetryWithNewSeedsAndKeepTheBest() throws {
        let g = FakeGaussians()
        let v = ScriptedValidator([0.3, 0.55, 0.4, 0.2])
        let p = GenerationPipeline(textToImage: nil, backgroundRemoval: nil, gaussians: g, validator: v)
        let out = try p.run(GenerationJob(prompt: .image(try rgbaImage()), seed: 100, minScore: 0.6, maxAttempts: 4))
        XCTAssertEqual(g.seeds, [100, 101, 102, 103])
        XCTAssertTrue(out.gated, "best score 0.55 is below 0.6: empty answer")
        XCTAssertTrue(out.ply.isEmpty)
        XCTAssertEqual(out.verdict?.score, 0.55)
        XCTAssertEqual(out.splat.count, 10 + 101 % 5)
    }

    func testRetryStopsAtTheDeadline() throws {
        let g = FakeGaussians()
        g.delay = 0.4
        let p = GenerationPipeline(textToImage: nil, backgroundRemoval: nil, gaussians: g, validator: ScriptedValidator([0.1]))
        let out = try p.run(GenerationJob(prompt: .image(try rgbaImage()), timeBudget: 1.0, maxAttempts: 10))
        // 0.4 s per attempt: a second one ends at 0.8 s (inside 1.0 s, 0.2 s of slack for a loaded machine);
        // a third would end at 1.2 s, past the budget.
        XCTAssertEqual(out.attempts.count, 2)
        XCTAssertTrue(out.gated)
    }

    func testPassingAfterRetryIsReturned() throws {
        let p = GenerationPipeline(textToImage: nil, backgroundRemoval: nil, gaussians: FakeGaussians(),
                                   validator: ScriptedValidator([0.5, 0.7]))
        let out = try p.run(GenerationJob(prompt: .image(try rgbaImage()), seed: 1))
        XCTAssertFalse(out.gated)
        XCTAssertEqual(out.attempts.map(\.seed), [1, 2])
        XCTAssertFalse(out.ply.isEmpty)
    }

    func testMissingStagesExplainThemselves() throws {
        let p = GenerationPipeline(textToImage: nil, backgroundRemoval: nil, gaussians: FakeGaussians(), validator: nil,
                                   missingAdvice: [.textToImage: "run gen3d fetch --model flux1-schnell"])
        XCTAssertThrowsError(try p.run(GenerationJob(prompt: .text("chair")))) {
            XCTAssertTrue("\($0)".contains("gen3d fetch --model flux1-schnell"))
        }
        let opaque = try Image(width: 1, height: 1, channels: 3, pixels: [1, 2, 3])
        XCTAssertThrowsError(try p.run(GenerationJob(prompt: .image(opaque)))) {
            XCTAssertTrue("\($0)".contains("RGBA"), "\($0)")
        }
        // no validator: the PLY is returned with a note, never gated
        let out = try p.run(GenerationJob(prompt: .image(try rgbaImage())))
        XCTAssertFalse(out.gated)
        XCTAssertTrue(out.notes.first?.contains("not validated") ?? false)
    }
}
