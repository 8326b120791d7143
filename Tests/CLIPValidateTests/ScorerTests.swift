import Foundation
import XCTest
import Diagnostics
import CLIPValidate
import Imaging
import Models
import NN
import TorchShim

/// The validator scorers' public API against fixtures/openclip, case by case. Tolerances (README): aggregate
/// numbers within 1e-6 (the outlier decisions, kept values and KNN scores must match exactly: they are
/// reproduced in the validator's own dtype and operation order); fp32 model outputs within 1e-5; preprocessing
/// within 1e-5. The SSIM/LPIPS metrics themselves are checked against torchmetrics in ModelsTests.
final class ScorerTests: XCTestCase {
    static let aggregateTolerance = 1e-6
    static let featureTolerance = 1e-5

    func aggregateJSON() throws -> [String: Any] { try ScorerFixturePaths.json("aggregate_cases.json") }

    func numbers(_ value: Any?) throws -> [Double] {
        let list = try XCTUnwrap(value as? [Any], "expected a list")
        return try list.map { try number($0) }
    }

    func number(_ value: Any?) throws -> Double {
        if let s = value as? String, s == "NaN" { return .nan }
        return try XCTUnwrap(value as? Double, "expected a number, got \(String(describing: value))")
    }

    func dictionary(_ value: Any?) throws -> [String: Any] { try XCTUnwrap(value as? [String: Any]) }

    /// fp32 quantities, compared exactly. (Foundation's JSON reader may land an ulp of Double away from the
    /// written decimal; rounding to Float recovers the float32 value the validator produced.)
    func floats(_ value: Any?) throws -> [Float] { try numbers(value).map(Float.init) }

    // MARK: aggregation

    func testTextAlignmentAggregationOfEveryCase() throws {
        let cases = try XCTUnwrap(aggregateJSON()["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 15)
        for (n, item) in cases.enumerated() {
            let ta = try dictionary(item["text_alignment"])
            let result = try ValidatorAggregation.textAlignment(cosines: try numbers(ta["per_view"]).map(Float.init))
            let f = result.filter
            XCTAssertEqual(f.knnInput, try floats(ta["knn_input_order"]), "case \(n)")
            XCTAssertEqual(f.decisionScores, try floats(ta["knn_decision_scores"]), "case \(n)")
            XCTAssertEqual(f.threshold, Float(try number(ta["knn_threshold"])), "case \(n)")
            XCTAssertEqual(f.outliers.map { $0 ? 1.0 : 0.0 }, try numbers(ta["knn_outlier_labels"]), "case \(n)")
            XCTAssertEqual(f.kept, try floats(ta["kept"]), "case \(n)")
            XCTAssertEqual(result.meanInput, try floats(ta["clipped_mean_input"]), "case \(n)")
            XCTAssertEqual(Double(result.geometricMean), try number(ta["geometric_mean"]),
                           accuracy: Self.aggregateTolerance, "case \(n)")
            XCTAssertEqual(result.alignment, try number(ta["alignment"]), accuracy: Self.aggregateTolerance, "case \(n)")
        }
    }

    func testQualitySSIMAndLPIPSAggregationOfEveryCase() throws {
        let cases = try XCTUnwrap(aggregateJSON()["cases"] as? [[String: Any]])
        for (n, item) in cases.enumerated() {
            XCTAssertEqual(ValidatorAggregation.iqa(qualityScores: try numbers(item["per_view_quality"])),
                           try number(item["iqa"]), accuracy: Self.aggregateTolerance, "case \(n)")
            for (name, aggregate) in [("ssim", ValidatorAggregation.ssim), ("lpips", ValidatorAggregation.lpips)] {
                let expected = try dictionary(item[name])
                let result = try aggregate(try numbers(expected["per_pair"]))
                for (got, want) in zip(result.filter.knnInput, try numbers(expected["knn_input_order"])) {
                    XCTAssertEqual(got, want, accuracy: 1e-15, "\(name) case \(n)")
                }
                for (got, want) in zip(result.filter.decisionScores, try numbers(expected["knn_decision_scores"])) {
                    XCTAssertEqual(got, want, accuracy: 1e-12, "\(name) case \(n)")
                }
                XCTAssertEqual(result.filter.threshold, try number(expected["knn_threshold"]), accuracy: 1e-12)
                XCTAssertEqual(result.filter.outliers.map { $0 ? 1.0 : 0.0 }, try numbers(expected["knn_outlier_labels"]),
                               "\(name) case \(n)")
                let kept = try numbers(expected["kept"])
                XCTAssertEqual(result.filter.kept.count, kept.count, "\(name) case \(n)")
                for (got, want) in zip(result.filter.kept, kept) { XCTAssertEqual(got, want, accuracy: 1e-15) }
                XCTAssertEqual(result.value, try number(expected["value"]), accuracy: Self.aggregateTolerance,
                               "\(name) case \(n)")
            }
        }
    }

    func testFinalScoreOfEveryCase() throws {
        let json = try aggregateJSON()
        let cases = try XCTUnwrap(json["cases"] as? [[String: Any]])
        for (n, item) in cases.enumerated() {
            let final = try dictionary(item["final"])
            let score = ValidatorAggregation.finalScore(iqa: try number(final["iqa"]), alignment: try number(final["alignment"]),
                                                        ssim: try number(final["ssim"]), lpips: try number(final["lpips"]))
            XCTAssertEqual(score, try number(final["score"]), accuracy: Self.aggregateTolerance, "case \(n)")
            XCTAssertEqual(Double(Float(score)), score, "case \(n): the validator's sum is float32")
            // From the raw per-view numbers through the whole aggregation.
            let verdict = try ValidatorAggregation.textScores(
                cosines: try numbers(dictionary(item["text_alignment"])["per_view"]).map(Float.init),
                qualityScores: try numbers(item["per_view_quality"]),
                ssimPairs: try numbers(dictionary(item["ssim"])["per_pair"]),
                lpipsPairs: try numbers(dictionary(item["lpips"])["per_pair"]))
            XCTAssertEqual(verdict.score, try number(final["score"]), accuracy: Self.aggregateTolerance, "case \(n)")
            XCTAssertEqual(verdict.passesAlignmentCutoff, verdict.alignment >= 0.3)
        }
        let finals = try XCTUnwrap(json["final_score_cases"] as? [[String: Any]])
        XCTAssertEqual(finals.count, 12)
        for (n, item) in finals.enumerated() {
            let score = ValidatorAggregation.finalScore(iqa: try number(item["iqa"]), alignment: try number(item["alignment"]),
                                                        ssim: try number(item["ssim"]), lpips: try number(item["lpips"]))
            let expected = try number(item["score"])
            if expected.isNaN {
                XCTAssertTrue(score.isNaN, "final_score_cases \(n): NaN SSIM must give a NaN score, got \(score)")
            } else {
                XCTAssertEqual(score, expected, accuracy: Self.aggregateTolerance, "final_score_cases \(n)")
            }
        }
        XCTAssertEqual(ValidatorAggregation.finalScore(iqa: 0.9, alignment: 0.29999999, ssim: 0.9, lpips: 0.9), 0)
    }

    func testImageAlignmentOfEveryCase() throws {
        let cases = try XCTUnwrap(aggregateJSON()["image_alignment_cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 4)
        for (n, item) in cases.enumerated() {
            let result = try ValidatorAggregation.imageAlignment(similarities: try numbers(item["per_view"]).map(Float.init))
            XCTAssertEqual(result.filter.kept, try floats(item["kept"]), "case \(n)")
            XCTAssertEqual(result.alignment, try number(item["alignment"]), accuracy: Self.aggregateTolerance, "case \(n)")
        }
    }

    func testOutlierFilterEdgeCases() throws {
        XCTAssertThrowsError(try ValidatorAggregation.textAlignment(cosines: [0.3, 0.3, 0.3, 0.3, 0.3])) {
            XCTAssertEqual($0 as? ValidatorScoreError, .tooFewValues("text alignment", got: 5, needed: 6))
        }
        // All equal: every score is 0, nothing is above the threshold, nothing is dropped.
        let tied = try ValidatorStatistics.filterOutliers([Float](repeating: 0.25, count: 16), sortFirst: false)
        XCTAssertEqual(tied.kept.count, 16)
        // A view at exactly 0 after clipping zeroes the geometric mean; a negative one is clipped to 0 first.
        let withZero = try ValidatorAggregation.textAlignment(cosines: [0.30, 0.31, 0.29, 0.30, 0.305, 0.295, 0.0])
        XCTAssertEqual(withZero.filter.kept.count, 6, "0.0 is the outlier here")
        // The validator drops literal -1 values too (its outlier marker).
        let minusOne = try ValidatorStatistics.filterOutliers([-1, -1, -1, -1, -1, -1, -1, 0.5] as [Double], sortFirst: true)
        XCTAssertEqual(minusOne.kept, [])
        XCTAssertEqual(ValidatorStatistics.numpyPercentile([1, 2, 3, 4] as [Double], 90), 3.7, accuracy: 1e-15)
    }

    // MARK: preprocessing

    func testPreprocessingFixture() throws {
        let dir = try ScorerFixturePaths.openclip()
        let io = try SafeTensorsFile(url: dir.appendingPathComponent("preprocess_io.safetensors"))
        for k in 0..<3 {
            let image = try ImageDecoder.decode(contentsOf: dir.appendingPathComponent("preprocess_image\(k).png"))
            let views = try ValidatorPreprocessing.stack([image])
            XCTAssertTrue(try views.squeeze(0).equal(io.tensor("input.image\(k)")), "PNG \(k) decodes to the fixture bytes")
            let clip = try ValidatorPreprocessing.clipPixels(views)
            XCTAssertLessThanOrEqual(try (clip - io.tensor("output.clip.image\(k)")).abs().max().item(), 1e-5)
            XCTAssertEqual(clip.dtype, .float32)
            let half = try ValidatorPreprocessing.clipPixels(views, halfPrecision: true)
            XCTAssertEqual(half.dtype, .float16)
            // README: the validator's fp16 preprocessing differs from fp32 by up to 1.8e-3.
            XCTAssertLessThanOrEqual(try (half.to(.float32) - io.tensor("output.clip.image\(k)")).abs().max().item(), 2.5e-3)
        }
        let dino = try ValidatorPreprocessing.dinoPixels(io.tensor("input.image0").unsqueeze(0))
        XCTAssertLessThanOrEqual(try (dino.squeeze(0) - io.tensor("output.dino.image0")).abs().max().item(), 1e-5)
        let lpips = try ValidatorPreprocessing.lpipsPixels(io.tensor("input.image2").unsqueeze(0))
        XCTAssertEqual(lpips.shape, [1, 3, 256, 256])
        XCTAssertGreaterThanOrEqual(try lpips.min().item(), 0)
        XCTAssertLessThanOrEqual(try lpips.max().item(), 1)
    }

    func testPreprocessingRejectsBadViews() throws {
        let rgb = try Image(width: 4, height: 4, filledWith: [1, 2, 3])
        XCTAssertThrowsError(try ValidatorPreprocessing.stack([])) { XCTAssertTrue("\($0)".contains("no views")) }
        XCTAssertThrowsError(try ValidatorPreprocessing.stack([rgb, rgb.toRGBA()])) {
            XCTAssertTrue("\($0)".contains("view 1 has 4 channels"), "\($0)")
        }
        XCTAssertThrowsError(try ValidatorPreprocessing.stack([rgb, Image(width: 5, height: 4, filledWith: [0, 0, 0])])) {
            XCTAssertTrue("\($0)".contains("view 1 is 5x4"), "\($0)")
        }
        XCTAssertThrowsError(try ValidatorPreprocessing.clipPixels(Tensor.zeros([2, 8, 8, 3]))) {
            XCTAssertTrue("\($0)".contains("uint8"), "\($0)")
        }
        XCTAssertThrowsError(try ValidatorPreprocessing.dinoPixels(Tensor.zeros([2, 3, 8, 8], dtype: .uint8))) {
            XCTAssertTrue("\($0)".contains("[N, H, W, 3]"), "\($0)")
        }
    }

    // MARK: models through the scorer API

    func testQualityScorerFixture() throws {
        let dir = try ScorerFixturePaths.openclip()
        let json = try ScorerFixturePaths.json("quality_head.json")
        let args = try dictionary(json["args"])
        let config = try JSONDecoder().decode(DINOv2.Config.self,
                                              from: JSONSerialization.data(withJSONObject: try XCTUnwrap(args["backbone_config"])))
        let scorer = try QualityScorer.load(config: config, source: SafeTensors.open(dir.appendingPathComponent("quality_head.safetensors")),
                                            embeddingDim: args["emb_dim"] as? Int, resolution: config.imageSize)
        let io = try SafeTensorsFile(url: dir.appendingPathComponent("quality_head_io.safetensors"))
        let views = try io.tensor("input.images")
        let scores = try scorer.scores(views: views)
        for (got, want) in zip(scores, try io.tensor("output.score").toArray(Float.self)) {
            XCTAssertEqual(got, Double(want), accuracy: Self.featureTolerance)
        }
        XCTAssertEqual(try scorer.iqa(views: views), try io.tensor("output.iqa").item(), accuracy: Self.featureTolerance)
    }

    func testTextAlignmentScorerFixture() throws {
        let dir = try ScorerFixturePaths.openclip()
        let modelJSON = try ScorerFixturePaths.json("clip_convnext.json")
        let config = try JSONDecoder().decode(OpenCLIPConvNeXt.Config.self,
                                              from: JSONSerialization.data(withJSONObject: try XCTUnwrap(modelJSON["args"])))
        let model = try OpenCLIPConvNeXt.load(config: config,
                                              source: SafeTensors.open(dir.appendingPathComponent("clip_convnext.safetensors")))
        let io = try SafeTensorsFile(url: dir.appendingPathComponent("alignment_e2e_io.safetensors"))
        let scorer = TextAlignmentScorer(model: model)
        XCTAssertFalse(scorer.halfPrecisionPreprocessing)
        let ids = try io.tensor("input.text")
        let row = try ids.select(0, 0).toArray(Int64.self).map(Int.init)
        let result = try scorer.score(views: io.tensor("input.views"), promptTokenIDs: Array(row.prefix { $0 != 0 }))
        for (got, want) in zip(result.cosines, try io.tensor("inter.clip_scores").toArray(Float.self)) {
            XCTAssertEqual(got, want, accuracy: Float(Self.featureTolerance))
        }
        XCTAssertEqual(result.aggregate.filter.kept.count, try io.tensor("inter.kept").size(0))
        XCTAssertEqual(result.alignment, try io.tensor("output.alignment").item(), accuracy: Self.featureTolerance)
        XCTAssertThrowsError(try scorer.score(views: io.tensor("input.views"), tokenIDs: Tensor.cat([ids, ids], dim: 0))) {
            XCTAssertTrue("\($0)".contains("one prompt"), "\($0)")
        }
    }

    // MARK: real-size structure and the benchmark

    /// The quality key enumeration reproduces the fixture's DINOv2Net checkpoint exactly; at real size
    /// (dinov2-small + heads) the loader accepts it in full.
    func testQualityRealSizeKeySetLoads() throws {
        let dir = try ScorerFixturePaths.openclip()
        let json = try ScorerFixturePaths.json("quality_head.json")
        let args = try dictionary(json["args"])
        let config = try JSONDecoder().decode(DINOv2.Config.self,
                                              from: JSONSerialization.data(withJSONObject: try XCTUnwrap(args["backbone_config"])))
        let stored = try SafeTensorsFile(url: dir.appendingPathComponent("quality_head.safetensors"))
        let expected = QualityScorer.expectedTensors(config: config, embeddingDim: 8)
        XCTAssertEqual(Set(expected.keys), Set(stored.keys))
        for key in stored.keys { XCTAssertEqual(expected[key], stored.info(key)?.shape, key) }
        let real = QualityScorer.expectedTensors(config: ValidatorScorerBenchmark.dinov2Small)
        XCTAssertEqual(real["backbone.embeddings.position_embeddings"], [1, 1 + 37 * 37, 384])
        let manifest = ManifestWeights(real.mapValues { TensorInfo(dtype: .float32, shape: $0) })
        let scorer = try QualityScorer.load(config: ValidatorScorerBenchmark.dinov2Small, source: manifest, embeddingDim: 256)
        XCTAssertEqual(scorer.resolution, 518)
    }

    /// A CPU smoke run of the GPU benchmark with the tiny configurations (not a timing test).
    func testBenchmarkRunsWithTinyConfigurations() throws {
        let rows = try ValidatorScorerBenchmark.run(device: .cpu, dtype: .float16, tiny: true, iterations: 1, warmup: 0)
        XCTAssertEqual(rows.count, 2 * 4 + 2 + 2 + 1)
        XCTAssertTrue(rows.allSatisfy { $0.milliseconds > 0 })
    }
}
