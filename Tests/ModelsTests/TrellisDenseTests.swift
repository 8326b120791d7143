import Foundation
import XCTest
import Models
import NN
import Pipeline
import TorchShim

/// Parity of the dense TRELLIS networks and DINOv2 with the oracle fixtures (fixtures/trellis/README.md).
/// Tolerances (README): single networks atol 1e-4 + rtol 1e-4; sampler outputs atol 1e-3; occupancy coordinates exact.
final class TrellisDenseTests: XCTestCase {
    func fixtureCase(_ stem: String) throws -> FixtureCase {
        let dir = try TrellisDenseFixturePaths.trellis()
        let cases = try FixtureRunner().discover(dir)
        return try XCTUnwrap(cases.first { $0.stem == stem }, "fixture case \(stem) not found in \(dir.path)")
    }

    /// Runs a case through the registered selftest handler, prints the comparisons and asserts they all pass.
    @discardableResult
    func runRegistered(_ stem: String, expecting names: [String]) throws -> FixtureResult {
        let result = FixtureRunner().run(try fixtureCase(stem))
        print("\(stem): \(result.seconds) s")
        result.comparisons.forEach { print("  \($0)") }
        XCTAssertNil(result.error, result.error ?? "")
        XCTAssertTrue(result.passed)
        let compared = Set(result.comparisons.map(\.name))
        for name in names { XCTAssertTrue(compared.contains(name), "\(stem): \(name) was not compared") }
        return result
    }

    func testSparseStructureFlowFixture() throws {
        try runRegistered("ss_flow", expecting: ["output", "b2.output", "inter.t_emb", "inter.block0", "inter.block1"])
    }

    func testSparseStructureDecoderFixture() throws {
        try runRegistered("ss_dec", expecting: ["output"])
    }

    func testDINOv2Fixture() throws {
        try runRegistered("dinov2_tiny", expecting: ["pixel_values", "embeddings", "hidden_states_last",
                                                     "last_hidden_state", "cond"])
    }
}

extension TrellisDenseTests {
    /// The SS stage of the tiny pipeline run: schedule (exact), every model call, every step, samples (atol 1e-3),
    /// occupancy logits (atol 1e-3) and coordinates (exact).
    func testSparseStructureSamplerMatchesPipeline() throws {
        let comparisons = try TrellisDenseFixtures.runSparseStructureStage(try fixtureCase("pipeline"))
        comparisons.forEach { print("  \($0)") }
        XCTAssertTrue(comparisons.allSatisfy(\.passed))
        let names = Set(comparisons.map(\.name))
        for j in 0..<9 { XCTAssertTrue(names.contains("ss.call\(j).v"), "call \(j) missing") }
        for i in 0..<5 { XCTAssertTrue(names.contains("ss.step\(i).pred_x0"), "step \(i) missing") }
        for name in ["ss.t_seq", "ss.samples", "occupancy_logits", "coords"] { XCTAssertTrue(names.contains(name)) }
    }

    func testScheduleMatchesReadme() {
        let t = FlowEulerGuidanceIntervalSampler.timeSchedule(steps: 25, rescaleT: 3)
        let params = FlowEulerGuidanceIntervalSampler.Params()
        XCTAssertEqual(t.count, 26)
        XCTAssertEqual(t[1], 0.9863, accuracy: 5e-5)
        XCTAssertEqual(t[18], 0.5385, accuracy: 5e-5)
        XCTAssertEqual(t.last, 0)
        // README: 19 guided steps for the released 25-step schedule.
        XCTAssertEqual(t.dropLast().filter { FlowEulerGuidanceIntervalSampler.isGuided($0, params: params) }.count, 19)
    }
}

// MARK: - checkpoint loading

extension TrellisDenseTests {
    func manifest(_ name: String) throws -> (args: [String: Any], weights: ManifestWeights) {
        let url = try TrellisDenseFixturePaths.trellis().appendingPathComponent("manifest_\(name).json")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        return (try XCTUnwrap(json["args"] as? [String: Any]), try ManifestWeights(url: url))
    }

    func testFullSizeSparseStructureFlowManifestLoads() throws {
        let (args, weights) = try manifest("ss_flow_img_dit_L_16l8_fp16")
        let loader = WeightLoader(weights)
        let model = try SparseStructureFlowModel(args: args, weights: loader)
        try loader.checkAllUsed()
        XCTAssertEqual(model.blocks.count, 24)
        XCTAssertEqual(model.config.heads, 16)
        XCTAssertEqual(model.dtype, .float16)     // blocks stored fp16, io layers fp32
        XCTAssertEqual(model.inputLayer.weight.dtype, .float32)
        XCTAssertEqual(weights.keys.count, 489)
    }

    func testFullSizeSparseStructureDecoderManifestLoads() throws {
        let (args, weights) = try manifest("ss_dec_conv3d_16l8_fp16")
        let loader = WeightLoader(weights)
        let model = try SparseStructureDecoder(args: args, weights: loader)
        try loader.checkAllUsed()
        XCTAssertEqual(model.dtype, .float16)
        XCTAssertEqual(weights.keys.count, 74)
    }

    /// The tiny checkpoint of `stem` as an editable dictionary.
    func tinyWeights(_ file: String) throws -> TensorDictionary {
        let f = try SafeTensorsFile(url: try TrellisDenseFixturePaths.trellis().appendingPathComponent(file))
        var all: [String: Tensor] = [:]
        for k in f.keys { all[k] = try f.tensor(k) }
        return TensorDictionary(all)
    }

    /// Building with `key` removed, or with `key` reshaped to `badShape`, fails naming that key; an extra key is
    /// reported by checkAllUsed.
    func assertRejectsBadCheckpoint(_ file: String, key: String, badShape: [Int],
                                    build: (WeightLoader) throws -> Void) throws {
        let missing = try tinyWeights(file)
        missing[key] = nil
        XCTAssertThrowsError(try build(WeightLoader(missing))) { error in
            guard case .missing(let k, _)? = error as? WeightError else {
                return XCTFail("expected a missing-key error, got \(error)")
            }
            XCTAssertEqual(k, key)
            XCTAssertTrue("\(error)".contains(key), "\(error)")
        }
        let misshapen = try tinyWeights(file)
        misshapen[key] = try Tensor.zeros(badShape)
        XCTAssertThrowsError(try build(WeightLoader(misshapen))) { error in
            guard case .shapeMismatch(let k, _, let found)? = error as? WeightError else {
                return XCTFail("expected a shape mismatch, got \(error)")
            }
            XCTAssertEqual(k, key)
            XCTAssertEqual(found, badShape)
        }
        let extra = try tinyWeights(file)
        extra["blocks.99.unexpected.weight"] = try Tensor.zeros([1])
        let loader = WeightLoader(extra)
        try build(loader)
        XCTAssertThrowsError(try loader.checkAllUsed()) { error in
            XCTAssertTrue("\(error)".contains("blocks.99.unexpected.weight"), "\(error)")
        }
    }

    func testSparseStructureFlowRejectsBadCheckpoint() throws {
        let args = try fixtureCase("ss_flow").args
        try assertRejectsBadCheckpoint("ss_flow.safetensors", key: "blocks.1.self_attn.q_rms_norm.gamma",
                                       badShape: [4, 15]) { _ = try SparseStructureFlowModel(args: args, weights: $0) }
        try assertRejectsBadCheckpoint("ss_flow.safetensors", key: "pos_emb", badShape: [4095, 64]) {
            _ = try SparseStructureFlowModel(args: args, weights: $0)
        }
    }

    func testSparseStructureDecoderRejectsBadCheckpoint() throws {
        let args = try fixtureCase("ss_dec").args
        try assertRejectsBadCheckpoint("ss_dec.safetensors", key: "blocks.3.conv.weight", badShape: [64, 16, 3, 3, 2]) {
            _ = try SparseStructureDecoder(args: args, weights: $0)
        }
    }

    func testDINOv2RejectsBadCheckpoint() throws {
        let folder = try TrellisDenseFixturePaths.trellis().appendingPathComponent("dinov2_tiny")
        let config = try JSONDecoder().decode(DINOv2.Config.self,
                                              from: Data(contentsOf: folder.appendingPathComponent("config.json")))
        try assertRejectsBadCheckpoint("dinov2_tiny/model.safetensors", key: "encoder.layer.1.attention.attention.key.weight",
                                       badShape: [32, 31]) { _ = try DINOv2(config: config, weights: $0) }
        try assertRejectsBadCheckpoint("dinov2_tiny/model.safetensors", key: "embeddings.register_tokens",
                                       badShape: [1, 3, 32]) { _ = try DINOv2(config: config, weights: $0) }
    }

    func testBadConfigsAreRejectedClearly() throws {
        var args = try fixtureCase("ss_flow").args
        args["pe_mode"] = "rope"
        let weights = WeightLoader(try tinyWeights("ss_flow.safetensors"))
        XCTAssertThrowsError(try SparseStructureFlowModel(args: args, weights: weights)) {
            XCTAssertTrue("\($0)".contains("pe_mode"), "\($0)")
        }
        var config = DINOv2.Config(hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, imageSize: 56,
                                   numRegisterTokens: 4)
        config.useSwigluFfn = true
        XCTAssertThrowsError(try DINOv2(config: config, weights: WeightLoader(try tinyWeights("dinov2_tiny/model.safetensors")))) {
            XCTAssertTrue("\($0)".contains("swiglu"), "\($0)")
        }
    }

    func testBadInputsAreRejectedClearly() throws {
        let c = try fixtureCase("ss_flow")
        let model = try SparseStructureFlowModel(args: c.args, weights: WeightLoader(try c.weights()))
        XCTAssertThrowsError(try model(Tensor.zeros([1, 8, 8, 8, 8]), time: 500, cond: Tensor.zeros([1, 21, 32]))) {
            XCTAssertTrue("\($0)".contains("x has shape"), "\($0)")
        }
        XCTAssertThrowsError(try model(Tensor.zeros([1, 8, 16, 16, 16]), time: 500, cond: Tensor.zeros([1, 21, 31]))) {
            XCTAssertTrue("\($0)".contains("cond has shape"), "\($0)")
        }
    }
}
