import Foundation
import Models
import NN
import TorchShim

/// Self-test handlers for the dense half of TRELLIS (fixtures/trellis, README there):
/// `SparseStructureFlowModel`, `SparseStructureDecoder`, `Dinov2WithRegistersModel` / `Dinov2Model`.
/// Tolerances are the README's suggestion for an fp32 reimplementation: atol 1e-4 + rtol 1e-4 per network.
public enum TrellisDenseFixtures {
    public static let atol = 1e-4
    public static let rtol = 1e-4

    public static var handlers: [String: FixtureHandler] {
        [
            "SparseStructureFlowModel": runSparseStructureFlow,
            "SparseStructureDecoder": runSparseStructureDecoder,
            "Dinov2WithRegistersModel": runDINOv2,
            "Dinov2Model": runDINOv2,
        ]
    }

    static func compare(_ name: String, _ got: Tensor, _ expected: Tensor) throws -> TensorComparison {
        try TensorComparison.compare(name, got: got, expected: expected, atol: atol, rtol: rtol)
    }

    /// Batch 1 (with `inter.t_emb` and `inter.block{k}`) and the batched-CFG `b2.*` case.
    public static func runSparseStructureFlow(_ fixture: FixtureCase) throws -> [TensorComparison] {
        let loader = WeightLoader(try fixture.weights())
        let model = try SparseStructureFlowModel(args: fixture.args, weights: loader)
        try loader.checkAllUsed()
        let io = try fixture.io()
        var results: [TensorComparison] = []
        var inter: [String: Tensor] = [:]
        let out = try model(io.tensor("input.x"), t: io.tensor("input.t"), cond: io.tensor("input.cond")) { name, t in
            inter[name] = t
        }
        results.append(try compare("output", out, io.tensor("output")))
        for key in io.keys.sorted() where key.hasPrefix("inter.") {
            let name = String(key.dropFirst("inter.".count))
            guard let got = inter[name] else { throw FixtureError.malformed(fixture.label, "no intermediate '\(name)'") }
            results.append(try compare(key, got, io.tensor(key)))
        }
        if io.info("b2.input.x") != nil {
            let out2 = try model(io.tensor("b2.input.x"), t: io.tensor("b2.input.t"), cond: io.tensor("b2.input.cond"))
            results.append(try compare("b2.output", out2, io.tensor("b2.output")))
        }
        return results
    }

    public static func runSparseStructureDecoder(_ fixture: FixtureCase) throws -> [TensorComparison] {
        let loader = WeightLoader(try fixture.weights())
        let model = try SparseStructureDecoder(args: fixture.args, weights: loader)
        try loader.checkAllUsed()
        let io = try fixture.io()
        return [try compare("output", model(io.tensor("input.x")), io.tensor("output"))]
    }

    /// The HF-format DINOv2 case: embeddings, hidden_states[-1], the TRELLIS conditioning and last_hidden_state.
    public static func runDINOv2(_ fixture: FixtureCase) throws -> [TensorComparison] {
        guard let folder = fixture.json["hf_folder"] as? String else {
            throw FixtureError.malformed(fixture.label, "no hf_folder")
        }
        let model = try DINOv2.load(folder: fixture.url(folder), device: .cpu, dtype: .float32)
        let io = try fixture.io()
        let pixels = try io.tensor("pixel_values")
        var results: [TensorComparison] = []
        if io.info("pixel_rgb01") != nil {
            let normalized = try DINOv2.imagenetNormalize(io.tensor("pixel_rgb01"))
            results.append(try compare("pixel_values", normalized, pixels))
        }
        let out = try model(pixels)
        results.append(try compare("embeddings", out.embeddings, io.tensor("embeddings")))
        results.append(try compare("hidden_states_last", out.hiddenStatesLast, io.tensor("hidden_states_last")))
        results.append(try compare("last_hidden_state", out.lastHiddenState, io.tensor("last_hidden_state")))
        results.append(try compare("cond", DINOv2.trellisCondition(out.hiddenStatesLast), io.tensor("cond")))
        return results
    }
}
