import Foundation
import XCTest
import Diagnostics
import CLIPValidate
import Models
import NN
import Fixtures
import Tokenizers
import TorchShim

/// The open_clip convnext_large_d port and the validator's scorers against fixtures/openclip (README tolerances:
/// fp32 features within 1e-5, preprocessing within 1e-5, aggregate numbers within 1e-6, decisions exact; the
/// validator's own fp16 CUDA run is compared loosely, 1e-3, since fp16 moves it by about 3e-4).
final class OpenCLIPTests: XCTestCase {
    func fixtureCase(_ stem: String) throws -> FixtureCase {
        try FixtureChecks.fixtureCase(in: OpenCLIPFixturePaths.openclip(), stem)
    }

    @discardableResult
    func runRegistered(_ stem: String, expecting names: [String]) throws -> FixtureResult {
        try FixtureChecks.runRegistered(in: OpenCLIPFixturePaths.openclip(), stem, expecting: names)
    }

    func loadTinyCLIP(dtype: DType? = nil) throws -> (OpenCLIPConvNeXt, FixtureCase) {
        let c = try fixtureCase("clip_convnext")
        let config = try c.decodeArgs(OpenCLIPConvNeXt.Config.self)
        return (try OpenCLIPConvNeXt.load(config: config, source: c.weights(), dtype: dtype), c)
    }

    // MARK: fixtures through the selftest handlers

    func testCLIPFixture() throws {
        try runRegistered("clip_convnext", expecting: [
            "inter.vision_stem", "inter.vision_stage0", "inter.vision_stage3", "inter.vision_trunk",
            "inter.vision_mlp_hidden", "inter.text_embed", "inter.text_transformer_out", "inter.text_ln_final",
            "inter.text_eot", "output.image_features", "output.text_features", "output.cosine",
            "output.logit_scale", "output.logits_per_image",
        ])
    }

    func testPreprocessingFixture() throws {
        try runRegistered("preprocess", expecting: ["output.clip.image0", "output.clip.image1", "output.clip.image2",
                                                    "output.dino.image0", "png.image2", "fp16.clip.image2"])
    }

    func testTextAlignmentEndToEndFixture() throws {
        try runRegistered("alignment_e2e", expecting: ["input.text (tokenized prompt)", "inter.clip_scores", "inter.kept", "output.geometric_mean",
                                                       "output.alignment",
                                                       "output.validator_cuda_fp16_autocast_geometric_mean"])
    }

    func testQualityHeadFixture() throws {
        try runRegistered("quality_head", expecting: ["input.pixel_values", "inter.last_hidden_state",
                                                      "inter.cls_features", "output.logit", "output.score", "output.iqa"])
    }

    /// The later validator's `quality_scorer.pth` layout: a torch.save'd DINOv2Net with a torch-hub backbone
    /// (fused qkv), read by TorchCheckpoint and mapped onto the HF names, must score like the HF fixture.
    func testQualityScorerFromTorchHubCheckpoint() throws {
        let c = try fixtureCase("quality_head")
        let config = try qualityConfig(c)
        let io = try c.io()
        let hub = try TorchCheckpoint(url: OpenCLIPFixturePaths.torchCheckpoints().appendingPathComponent("quality_hub.pth"))
        XCTAssertTrue(hub.keys.contains("backbone.blocks.1.attn.qkv.weight"))
        let scorer = try QualityScorer.load(config: config, pretrainedBackbone: nil, headCheckpoint: hub)
        let pixels = try io.tensor("input.pixel_values")
        let (cls, logits) = try scorer.forward(pixels: pixels)
        let clsCheck = try TensorComparison.compare("cls", got: cls, expected: io.tensor("inter.cls_features"), atol: 1e-5, rtol: 1e-5)
        let logitCheck = try TensorComparison.compare("logit", got: logits, expected: io.tensor("output.logit"), atol: 1e-5)
        print(clsCheck, logitCheck, separator: "\n")
        XCTAssertTrue(clsCheck.passed && logitCheck.passed)
    }

    /// commit 5fc61f1b: pretrained HF backbone (bare keys) + a head-only checkpoint loaded with strict=False.
    /// Backbone tensors in the head checkpoint win over the pretrained ones.
    func testQualityScorerOverlaysHeadOnPretrainedBackbone() throws {
        let c = try fixtureCase("quality_head")
        let config = try qualityConfig(c)
        let stored = try c.weights()
        var backbone: [String: Tensor] = [:], head: [String: Tensor] = [:]
        for key in stored.keys {
            if key.hasPrefix("backbone.") { backbone[String(key.dropFirst("backbone.".count))] = try stored.tensor(key) }
            else { head[key] = try stored.tensor(key) }
        }
        let pixels = try c.io().tensor("input.pixel_values")
        let expected = try c.io().tensor("output.logit")
        let split = try QualityScorer.load(config: config, pretrainedBackbone: TensorDictionary(backbone),
                                           headCheckpoint: TensorDictionary(head))
        XCTAssertTrue(try split.forward(pixels: pixels).logits.allClose(expected, rtol: 0, atol: 1e-5))
        // A "pretrained" backbone with a wrong final norm is overridden by the head checkpoint's copy.
        var wrong = backbone
        wrong["layernorm.weight"] = try Tensor.zeros([config.hiddenSize])
        head["backbone.layernorm.weight"] = backbone["layernorm.weight"]
        let overlaid = try QualityScorer.load(config: config, pretrainedBackbone: TensorDictionary(wrong),
                                              headCheckpoint: TensorDictionary(head))
        XCTAssertTrue(try overlaid.forward(pixels: pixels).logits.allClose(expected, rtol: 0, atol: 1e-5))
        head["score_head.weight"] = nil
        XCTAssertThrowsError(try QualityScorer.load(config: config, pretrainedBackbone: TensorDictionary(backbone),
                                                    headCheckpoint: TensorDictionary(head))) {
            XCTAssertEqual($0 as? WeightError, .missing("score_head.weight", expected: [1, config.hiddenSize]))
        }
    }

    func qualityConfig(_ c: FixtureCase) throws -> DINOv2.Config {
        let args = try XCTUnwrap(c.args["backbone_config"])
        return try JSONDecoder().decode(DINOv2.Config.self, from: JSONSerialization.data(withJSONObject: args))
    }

    func testTokenizerFixture() throws {
        try runRegistered("tokenizer_cases", expecting: [])
    }

    /// The prompt text through the bundled open_clip tokenizer gives the fixture's ids and the same alignment.
    func testTextAlignmentFromPromptText() throws {
        let (model, _) = try loadTinyCLIP()
        let e2e = try fixtureCase("alignment_e2e")
        let prompt = try XCTUnwrap(e2e.json["prompt"] as? String)
        let io = try e2e.io()
        let scorer = TextAlignmentScorer(model: model)
        let fromText = try scorer.score(views: io.tensor("input.views"), prompt: prompt, tokenizer: CLIPTokenizer.openCLIP())
        let fromIDs = try scorer.score(views: io.tensor("input.views"), tokenIDs: io.tensor("input.text"))
        XCTAssertEqual(fromText.cosines, fromIDs.cosines)
        XCTAssertEqual(fromText.alignment, try io.tensor("output.alignment").item(), accuracy: 1e-5)
    }

    func testAggregationFixture() throws {
        try runRegistered("aggregate_cases", expecting: [
            "text.knn_decision_scores", "text.knn_threshold", "text.outlier_labels", "text.kept", "text.alignment",
            "iqa", "ssim.value", "lpips.value", "final.score", "final.score (from per-view values)",
            "final_score_cases.score", "image.kept", "image.alignment",
        ])
    }

    // MARK: model structure and loading

    func testConfigDecoding() throws {
        let (model, _) = try loadTinyCLIP()
        XCTAssertEqual(model.config.embedDim, 24)
        XCTAssertEqual(try model.config.trunkConfig(), TimmConvNeXt.Config(depths: [1, 1, 2, 1], dims: [8, 16, 24, 32]))
        XCTAssertEqual(model.config.vision.timmPool, "")
        XCTAssertEqual(model.config.vision.timmProj, "mlp")
        let realJSON = """
        {"embed_dim": 768, "vision_cfg": {"timm_model_name": "convnext_large", "timm_model_pretrained": false,
         "timm_pool": "", "timm_proj": "mlp", "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": 256},
         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 768, "heads": 12, "layers": 16}}
        """
        let real = try JSONDecoder().decode(OpenCLIPConvNeXt.Config.self, from: Data(realJSON.utf8))
        XCTAssertEqual(real, OpenCLIPConvNeXt.Config.convnextLargeD)
        XCTAssertEqual(try real.trunkConfig(), TimmConvNeXt.Config(depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536]))
        XCTAssertThrowsError(try TimmConvNeXt.Config.timm("convnext_atto")) { XCTAssertTrue("\($0)".contains("conv_mlp")) }
    }

    /// The key enumeration reproduces the fixture's state_dict exactly, so the same enumeration at real size is
    /// open_clip's convnext_large_d key set, which the loader then accepts in full.
    func testRealSizeKeySetLoads() throws {
        let c = try fixtureCase("clip_convnext")
        let config = try c.decodeArgs(OpenCLIPConvNeXt.Config.self)
        let stored = try c.weights()
        let expected = try OpenCLIPConvNeXt.expectedTensors(config: config)
        XCTAssertEqual(Set(expected.keys), Set(stored.keys))
        for key in stored.keys { XCTAssertEqual(expected[key], stored.info(key)?.shape, key) }

        let real = try OpenCLIPConvNeXt.expectedTensors(config: .convnextLargeD)
        XCTAssertEqual(real.count, 4 + 4 * 3 + 9 * (3 + 3 + 27 + 3) + 2 + 3 + 5 + 12 * 16 + 1)
        XCTAssertEqual(real["visual.trunk.stages.2.blocks.26.mlp.fc1.weight"], [3072, 768])
        XCTAssertEqual(real["visual.head.mlp.fc1.weight"], [1536, 1536])
        XCTAssertEqual(real["text_projection"], [768, 768])
        let manifest = ManifestWeights(real.mapValues { TensorInfo(dtype: .float32, shape: $0) })
        let model = try OpenCLIPConvNeXt.load(config: .convnextLargeD, source: manifest)
        XCTAssertEqual(model.visual.trunk.config.numFeatures, 1536)
    }

    func testLoaderRejectsMissingMisshapenAndExtraKeys() throws {
        let c = try fixtureCase("clip_convnext")
        let config = try c.decodeArgs(OpenCLIPConvNeXt.Config.self)
        let stored = try c.weights()
        func dictionary(_ edit: (inout [String: Tensor]) throws -> Void) throws -> TensorDictionary {
            var tensors: [String: Tensor] = [:]
            for k in stored.keys { tensors[k] = try stored.tensor(k) }
            try edit(&tensors)
            return TensorDictionary(tensors)
        }
        let missing = try dictionary { $0["visual.trunk.stages.2.blocks.1.gamma"] = nil }
        XCTAssertThrowsError(try OpenCLIPConvNeXt.load(config: config, source: missing)) {
            XCTAssertEqual($0 as? WeightError, .missing("visual.trunk.stages.2.blocks.1.gamma", expected: [24]))
        }
        let misshapen = try dictionary { $0["text_projection"] = try Tensor.zeros([12, 25]) }
        XCTAssertThrowsError(try OpenCLIPConvNeXt.load(config: config, source: misshapen)) {
            XCTAssertEqual($0 as? WeightError, .shapeMismatch("text_projection", expected: [12, 24], found: [12, 25]))
        }
        let extra = try dictionary { $0["visual.trunk.head.fc.weight"] = try Tensor.zeros([10, 32]) }
        XCTAssertThrowsError(try OpenCLIPConvNeXt.load(config: config, source: extra)) {
            XCTAssertEqual($0 as? WeightError, .unexpected(["visual.trunk.head.fc.weight"]))
        }
    }

    func testTextInputValidation() throws {
        let (model, _) = try loadTinyCLIP()
        XCTAssertThrowsError(try model.encodeText(tokenIDs: [Array(repeating: 1, count: 78)])) {
            XCTAssertTrue("\($0)".contains("78 ids"), "\($0)")
        }
        XCTAssertThrowsError(try model.encodeText(tokenIDs: [[49406, 49408]])) {
            XCTAssertTrue("\($0)".contains("49408"), "\($0)")
        }
        XCTAssertThrowsError(try model.encodeText(Tensor.zeros([1, 76], dtype: .int64))) {
            XCTAssertTrue("\($0)".contains("[B, 77]"), "\($0)")
        }
        XCTAssertThrowsError(try model.encodeImage(Tensor.zeros([1, 3, 16, 16]))) {
            XCTAssertTrue("\($0)".contains("smaller than its 32 px stride"), "\($0)")
        }
        // Ids given as rows equal the padded tensor the tokenizer would produce.
        let c = try fixtureCase("clip_convnext")
        let ids = try c.io().tensor("input.text")
        let row = try ids.select(0, 0).toArray(Int64.self).map(Int.init)
        let trimmed = Array(row.prefix(through: row.lastIndex { $0 != 0 }!))
        let fromRows = try model.encodeText(tokenIDs: [trimmed])
        let fromTensor = try model.encodeText(ids.narrow(0, start: 0, length: 1))
        XCTAssertTrue(try fromRows.equal(fromTensor))
    }

    /// The autocast-style fp16 path (matmul/conv weights fp16, norms and residuals fp32, fp16 preprocessing) runs
    /// on the CPU and stays within the fp16 band around the validator's own fp16 CUDA result (README: fp16 moves
    /// the geometric mean by about 3e-4; the CPU's fp16 kernels round differently from CUDA's, so this is the
    /// same loose 1e-3 as for fp32, and the fp16 path must also stay within 1e-3 of the fp32 value).
    func testHalfPrecisionPathStaysWithinTheValidatorsFP16Band() throws {
        let (model, _) = try loadTinyCLIP(dtype: .float16)
        let e2e = try fixtureCase("alignment_e2e")
        let io = try e2e.io()
        let scorer = TextAlignmentScorer(model: model)
        XCTAssertTrue(scorer.halfPrecisionPreprocessing)
        let result = try scorer.score(views: io.tensor("input.views"), tokenIDs: io.tensor("input.text"))
        let cudaFP16 = try io.tensor("output.validator_cuda_fp16_autocast_geometric_mean").item()
        let fp32 = try io.tensor("output.geometric_mean").item()
        let gm = Double(result.aggregate.geometricMean)
        print("fp16 path gm \(gm), validator CUDA fp16 \(cudaFP16), fp32 \(fp32)")
        XCTAssertEqual(gm, cudaFP16, accuracy: 1e-3)
        XCTAssertEqual(gm, fp32, accuracy: 1e-3)
        XCTAssertNotEqual(gm, fp32, "the fp16 path should not be the fp32 computation")
    }
}
