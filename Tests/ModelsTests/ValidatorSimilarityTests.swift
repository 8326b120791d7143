import Foundation
import XCTest
import CLIPValidate
import Models
import NN
import TorchShim

/// The validator's SSIM and LPIPS against torchmetrics itself (scripts/make_similarity_oracle.py: torchmetrics
/// 1.8.2, and 1.4.1 for the cropped SSIM), called per pair as similarity_scorer.py does, in float64 (the expected
/// values; byte-identical with 1 or 2 threads, MKL AVX2 or SSE4_2). The views are a bright shape on a dark background:
/// on a flat white one SSIM's E[x^2] - E[x]^2 cancels and float32 torchmetrics itself is 4.7e-5 off float64.
final class ValidatorSimilarityTests: XCTestCase {
    let dir = OpenCLIPFixturePaths.fixtureResources("validator_similarity")
    /// Per-pair SSIM (~0.54-0.66): fp32 torchmetrics and this code alike measured <= 2.0e-6 off the float64 values with
    /// default threads, OMP_NUM_THREADS=1, MKL AVX2 (1 thread) and SSE4_2; 3x that.
    static let ssimTolerance = 6e-6
    /// Per-pair LPIPS distances (~0.010-0.025): measured <= 2.9e-9 (fp32 torchmetrics and this code, same four settings);
    /// 5x that.
    static let lpipsTolerance = 1.5e-8

    func oracle() throws -> SafeTensorsFile { try SafeTensorsFile(url: dir.appendingPathComponent("views.safetensors")) }

    func assertClose(_ got: [Double], _ expected: [Double], atol: Double, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, what, file: file, line: line)
        let worst = zip(got, expected).map { Swift.abs($0 - $1) }.max() ?? .infinity
        print("\(what): max abs diff \(worst)")
        XCTAssertLessThanOrEqual(worst, atol, "\(what): \(got) vs \(expected)", file: file, line: line)
    }

    func testSSIMMatchesTorchmetrics() throws {
        let io = try oracle()
        let views = try io.tensor("input.views")
        let full = try ValidatorSSIM().pairScores(views: views)
        assertClose(full, try io.tensor("output.ssim_pairs").toArray(Double.self), atol: Self.ssimTolerance,
                    "SSIM (torchmetrics 1.8.2)")
        let cropped = try ValidatorSSIM(cropBorder: true).pairScores(views: views)
        assertClose(cropped, try io.tensor("output.ssim_pairs_cropped").toArray(Double.self), atol: Self.ssimTolerance,
                    "SSIM cropped (torchmetrics 1.4.1)")
    }

    func testSSIMOfIdenticalViewsIsOne() throws {
        let view = try (Tensor.rand([1, 40, 48, 3], generator: Generator(seed: 3)) * 255).to(.uint8)
        let views = try Tensor.cat([view, view, view], dim: 0)
        for score in try ValidatorSSIM().pairScores(views: views) { XCTAssertEqual(score, 1, accuracy: 1e-6) }
        XCTAssertThrowsError(try ValidatorSSIM().pairScores(views: views.narrow(0, start: 0, length: 1))) {
            XCTAssertTrue("\($0)".contains("at least 2 views"), "\($0)")
        }
        XCTAssertThrowsError(try ValidatorSSIM().pairScores(views: Tensor.zeros([2, 4, 4, 3], dtype: .uint8))) {
            XCTAssertTrue("\($0)".contains("too small"), "\($0)")
        }
    }

    /// The AlexNet weights the oracle used, regenerated with torch's CPU generator (same seed, same order).
    func alexnetRandomState() throws -> TensorDictionary {
        let generator = try Generator(seed: 5)
        var state: [String: Tensor] = [:]
        let convs = [(0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3)]
        for (index, cin, cout, k) in convs {
            state["features.\(index).weight"] = try Tensor.randn([cout, cin, k, k], generator: generator)
                * (1.0 / Double(cin * k * k).squareRoot())
            state["features.\(index).bias"] = try Tensor.randn([cout], generator: generator) * 0.1
        }
        state["classifier.1.weight"] = try Tensor.zeros([8, 16])   // torchvision's classifier: present, ignored
        return TensorDictionary(state)
    }

    func testLPIPSMatchesTorchmetrics() throws {
        let io = try oracle()
        let linear = try TorchCheckpoint(url: dir.appendingPathComponent("lpips_alex_lin.pth"))
        XCTAssertEqual(linear.keys, (0..<5).map { "lin\($0).model.1.weight" })
        let lpips = try ValidatorLPIPS.load(alexnet: alexnetRandomState(), linear: linear)
        let pairs = try lpips.pairScores(views: io.tensor("input.views"))
        assertClose(pairs, try io.tensor("output.lpips_pairs").toArray(Double.self), atol: Self.lpipsTolerance, "LPIPS")
        // Identical images are at distance 0; the order of a pair does not matter.
        let pixels = try ValidatorPreprocessing.lpipsPixels(io.tensor("input.views"))
        XCTAssertEqual(try lpips(pixels, pixels).abs().max().item(), 0, accuracy: 1e-12)
        let swapped = try lpips(pixels.roll([-1], dims: [0]), pixels).toArray(Float.self)
        XCTAssertEqual(swapped.map(Double.init), pairs)
    }

    func testLPIPSLoaderChecksKeys() throws {
        let linear = try TorchCheckpoint(url: dir.appendingPathComponent("lpips_alex_lin.pth"))
        var state = try alexnetRandomState().tensors
        state["features.6.bias"] = nil
        XCTAssertThrowsError(try ValidatorLPIPS.load(alexnet: TensorDictionary(state), linear: linear)) {
            XCTAssertEqual($0 as? WeightError, .missing("features.6.bias", expected: [384]))
        }
        state = try alexnetRandomState().tensors
        state["features.13.weight"] = try Tensor.zeros([1])
        XCTAssertThrowsError(try ValidatorLPIPS.load(alexnet: TensorDictionary(state), linear: linear)) {
            XCTAssertEqual($0 as? WeightError, .unexpected(["features.13.weight"]))
        }
    }

    /// The whole text-task judgement on the e2e fixture's 16 views with the tiny CLIP and quality models and the
    /// oracle's LPIPS weights: each part equals the scorer run alone, and the score is the aggregation of them.
    func testJudgeComposesTheScorers() throws {
        let openclip = try OpenCLIPFixturePaths.openclip()
        func args(_ name: String) throws -> [String: Any] {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: openclip.appendingPathComponent(name)))
            return try XCTUnwrap((json as? [String: Any])?["args"] as? [String: Any])
        }
        let clipConfig = try JSONDecoder().decode(OpenCLIPConvNeXt.Config.self,
                                                  from: JSONSerialization.data(withJSONObject: try args("clip_convnext.json")))
        let clip = try OpenCLIPConvNeXt.load(config: clipConfig,
                                             source: SafeTensors.open(openclip.appendingPathComponent("clip_convnext.safetensors")))
        let dinoConfig = try JSONDecoder().decode(
            DINOv2.Config.self, from: JSONSerialization.data(withJSONObject: try XCTUnwrap(try args("quality_head.json")["backbone_config"])))
        let quality = try QualityScorer.load(config: dinoConfig,
                                             source: SafeTensors.open(openclip.appendingPathComponent("quality_head.safetensors")),
                                             resolution: dinoConfig.imageSize)
        let lpips = try ValidatorLPIPS.load(alexnet: alexnetRandomState(),
                                            linear: TorchCheckpoint(url: dir.appendingPathComponent("lpips_alex_lin.pth")))
        let judge = ValidatorJudge(alignment: TextAlignmentScorer(model: clip), quality: quality, lpips: lpips)
        let io = try SafeTensorsFile(url: openclip.appendingPathComponent("alignment_e2e_io.safetensors"))
        let views = try io.tensor("input.views"), ids = try io.tensor("input.text")
        let result = try judge.judge(views: views, tokenIDs: ids)
        XCTAssertEqual(result.alignment.alignment, try io.tensor("output.alignment").item(), accuracy: 1e-5)
        XCTAssertEqual(result.qualityScores, try quality.scores(views: views))
        XCTAssertEqual(result.ssimPairs, try ValidatorSSIM().pairScores(views: views))
        XCTAssertEqual(result.lpipsPairs, try lpips.pairScores(views: views))
        let expected = try ValidatorAggregation.textScores(cosines: result.alignment.cosines, qualityScores: result.qualityScores,
                                                            ssimPairs: result.ssimPairs, lpipsPairs: result.lpipsPairs)
        XCTAssertEqual(result.scores.score, expected.score)
        XCTAssertEqual(result.qualityScores.count, 16)
        XCTAssertEqual(result.ssimPairs.count, 16)
        print("judge: \(result.scores)")
    }
}
