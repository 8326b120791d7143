import Foundation
import XCTest
@testable import Models
import NN
import Fixtures
import TorchShim

enum CLIPVisionFixturePaths {
    static let folder = FixturePaths.resources("clip_vision")
}

/// CLIPVisionModel (ImageDream's image encoder) against Resources/clip_vision, written by
/// scripts/clip_vision_fixtures.py from transformers 5.24 (a float64 run stored as float32, eager attention): a random 3-layer tower
/// (width 64, 4 heads, 32 px images in 8 px patches), once with hidden_act "gelu" (laion ViT-H/14) and once with
/// "quick_gelu" (OpenAI CLIP) on the same weights, keys in the published `vision_model.*` layout.
/// Tolerance: max abs 1e-5 on every hidden state, last_hidden_state and pooler_output, ~3.4x the largest error
/// against the stored float64 values: fp32 torch 2.13 <= 2.86e-6, this code <= 2.98e-6 (outputs up to 7.2), alike
/// under default settings, OMP_NUM_THREADS=1, MKL_ENABLE_INSTRUCTIONS=AVX2 and =SSE4_2 (Resources/clip_vision/README.md).
final class CLIPVisionTests: XCTestCase {
    static let tolerance = 1e-5
    static let cases = ["clip_vision_gelu", "clip_vision_quick_gelu"]

    private var folder: URL { CLIPVisionFixturePaths.folder }

    private struct Case {
        let stem: String
        let config: CLIPVisionModel.Config
        let weights: URL
        let io: SafeTensorsFile
    }

    private func fixture(_ stem: String) throws -> Case {
        let data = try Data(contentsOf: folder.appendingPathComponent("\(stem).json"))
        let spec = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any], "\(stem).json")
        XCTAssertEqual(spec["name"] as? String, "CLIPVisionModel")
        let args = try JSONSerialization.data(withJSONObject: try XCTUnwrap(spec["args"], "\(stem).json has no args"))
        let weights = try XCTUnwrap(spec["weights"] as? String, "\(stem).json names no weights")
        return Case(stem: stem, config: try JSONDecoder().decode(CLIPVisionModel.Config.self, from: args),
                    weights: folder.appendingPathComponent(weights),
                    io: try SafeTensorsFile(url: folder.appendingPathComponent("\(stem)_io.safetensors")))
    }

    /// Loads as `MVDreamPipeline.load` does (penultimate only: the last layer and post_layernorm present but ignored),
    /// or the whole tower; either way every other key must be used.
    private func load(_ c: Case, penultimateOnly: Bool, source: WeightSource? = nil) throws -> CLIPVisionModel {
        let w = WeightLoader(try source ?? SafeTensors.open(c.weights), device: .cpu, dtype: .float32)
        let model = try CLIPVisionModel(w, config: c.config, usesPenultimateLayerOnly: penultimateOnly)
        try w.checkAllUsed()
        return model
    }

    private func assertPasses(_ comparisons: [TensorComparison], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(comparisons.isEmpty, file: file, line: line)
        for c in comparisons {
            print("  \(c)")
            XCTAssertTrue(c.passed, "\(c)", file: file, line: line)
        }
    }

    // MARK: parity

    func testConfigDecodesTransformersConfigJSON() throws {
        let gelu = try fixture("clip_vision_gelu").config, quick = try fixture("clip_vision_quick_gelu").config
        XCTAssertEqual(gelu, CLIPVisionModel.Config(hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 3, numAttentionHeads: 4,
                                                    numChannels: 3, imageSize: 32, patchSize: 8, hiddenAct: .gelu, layerNormEps: 1e-5))
        XCTAssertEqual(quick.hiddenAct, .quickGelu)
        XCTAssertEqual(gelu.tokens, 17)
        // Both cases share one weights file; its keys and shapes are exactly the tower's.
        let file = try SafeTensorsFile(url: fixture("clip_vision_gelu").weights)
        XCTAssertEqual(try fixture("clip_vision_quick_gelu").weights, try fixture("clip_vision_gelu").weights)
        XCTAssertEqual(gelu.parameterShapes(), Dictionary(uniqueKeysWithValues: file.keys.map { ($0, file.info($0)!.shape) }))
    }

    /// The full tower: every hidden state (embeddings after pre_layrnorm, then each layer), last_hidden_state and
    /// pooler_output, for both activations.
    func testFullForwardMatchesTransformers() throws {
        for stem in Self.cases {
            let c = try fixture(stem)
            let model = try load(c, penultimateOnly: false)
            let x = try c.io.tensor("input.pixel_values")
            var hidden: [Tensor] = []
            _ = try model.encoder(model.embed(x), causal: false) { hidden.append($0) }
            XCTAssertEqual(hidden.count, c.config.numHiddenLayers + 1)
            var comparisons = try hidden.enumerated().map { i, h in
                try TensorComparison.compare("\(stem) hidden_states.\(i)", got: h, expected: c.io.tensor("output.hidden_states.\(i)"),
                                             atol: Self.tolerance)
            }
            let out = try model(x)
            comparisons.append(try .compare("\(stem) last_hidden_state", got: out.lastHiddenState,
                                            expected: c.io.tensor("output.last_hidden_state"), atol: Self.tolerance))
            comparisons.append(try .compare("\(stem) pooler_output", got: out.poolerOutput,
                                            expected: c.io.tensor("output.pooler_output"), atol: Self.tolerance))
            comparisons.append(try .compare("\(stem) penultimate (full tower)", got: model.penultimateHiddenState(x),
                                            expected: c.io.tensor("output.hidden_states.2"), atol: Self.tolerance))
            assertPasses(comparisons)
        }
    }

    /// ImageDream's path: built with `usesPenultimateLayerOnly` from the full checkpoint, hidden_states[-2].
    func testPenultimateHiddenStateMatchesTransformers() throws {
        for stem in Self.cases {
            let c = try fixture(stem)
            let model = try load(c, penultimateOnly: true)
            XCTAssertEqual(model.encoder.layers.count, c.config.numHiddenLayers - 1)
            XCTAssertNil(model.postLayerNorm)
            let x = try c.io.tensor("input.pixel_values")
            let got = try model.penultimateHiddenState(x)
            XCTAssertEqual(got.shape, [2, 17, 64])
            assertPasses([try .compare("\(stem) hidden_states[-2]", got: got, expected: c.io.tensor("output.hidden_states.2"),
                                       atol: Self.tolerance)])
            XCTAssertThrowsError(try model(x)) { XCTAssertTrue("\($0)".contains("penultimate"), "\($0)") }
        }
    }

    /// transformers 5 saves CLIPVisionModel without the `vision_model.` prefix; that layout loads too.
    func testLoadsTheUnprefixedTransformers5Layout() throws {
        let c = try fixture("clip_vision_gelu")
        let stored = try FixtureChecks.weights(c.weights)
        var unprefixed: [String: Tensor] = [:]
        for key in stored.keys {
            XCTAssertTrue(key.hasPrefix("vision_model."), key)
            unprefixed[String(key.dropFirst("vision_model.".count))] = stored[key]
        }
        let model = try load(c, penultimateOnly: true, source: TensorDictionary(unprefixed))
        assertPasses([try .compare("unprefixed hidden_states[-2]", got: model.penultimateHiddenState(c.io.tensor("input.pixel_values")),
                                   expected: c.io.tensor("output.hidden_states.2"), atol: Self.tolerance)])
    }

    /// The fixture tells the activations apart: the two cases' outputs differ far beyond the tolerance, and the gelu
    /// weights run with quick_gelu miss the gelu oracle.
    func testOracleSeesTheActivation() throws {
        let gelu = try fixture("clip_vision_gelu"), quick = try fixture("clip_vision_quick_gelu")
        let expectedGelu = try gelu.io.tensor("output.hidden_states.2")
        XCTAssertGreaterThan(try (expectedGelu - quick.io.tensor("output.hidden_states.2")).abs().max().item(), 1e-3)
        let wrong = try load(quick, penultimateOnly: true)
        let got = try wrong.penultimateHiddenState(gelu.io.tensor("input.pixel_values"))
        XCTAssertGreaterThan(try (got - expectedGelu).abs().max().item(), 1e-3)
    }

    // MARK: bad input

    func testRejectsPixelValuesOfTheWrongShape() throws {
        let c = try fixture("clip_vision_gelu")
        let model = try load(c, penultimateOnly: true)
        for shape in [[2, 3, 16, 16], [3, 32, 32], [2, 1, 32, 32], [2, 3, 32, 31]] {
            XCTAssertThrowsError(try model.penultimateHiddenState(Tensor.zeros(shape)), "\(shape)") { error in
                XCTAssertTrue("\(error)".contains("pixel values must be [batch, 3, 32, 32], got \(shape)"), "\(error)")
            }
        }
    }

    func testRejectsBadCheckpointsAndConfigs() throws {
        let c = try fixture("clip_vision_gelu")
        for penultimateOnly in [false, true] {
            try FixtureChecks.assertLoaderRejects(c.weights, missing: "vision_model.encoder.layers.1.mlp.fc1.weight",
                                                  reshaped: "vision_model.embeddings.position_embedding.weight") {
                _ = try CLIPVisionModel($0, config: c.config, usesPenultimateLayerOnly: penultimateOnly)
            }
        }
        // The full tower needs the last layer and post_layernorm; the penultimate mode does not.
        for key in ["vision_model.encoder.layers.2.self_attn.q_proj.weight", "vision_model.post_layernorm.bias"] {
            let partial = try FixtureChecks.weights(c.weights)
            partial[key] = nil
            XCTAssertThrowsError(try load(c, penultimateOnly: false, source: partial)) { error in
                XCTAssertEqual(error as? WeightError, .missing(key, expected: [64] + (key.hasSuffix("q_proj.weight") ? [64] : [])))
            }
            XCTAssertNoThrow(try load(c, penultimateOnly: true, source: partial))
        }
        var bad = c.config
        bad.imageSize = 30
        XCTAssertThrowsError(try load(Case(stem: c.stem, config: bad, weights: c.weights, io: c.io), penultimateOnly: true)) {
            XCTAssertTrue("\($0)".contains("multiple of patch_size"), "\($0)")
        }
    }
}
