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

    /// The sparse-structure stage of the pipeline case (`pipeline.json`): from `ss.noise` and the stored cond /
    /// neg_cond, reproduces `ss.t_seq` (exact), every model call `ss.call{j}.t|v`, `ss.step{i}.x_prev|pred_x0`,
    /// `ss.samples`, `occupancy_logits` (atol 1e-3, the README's sampler tolerance) and `coords` (exact).
    /// Not registered under `TrellisImageTo3DPipeline`: the whole-pipeline handler can call it for stage 1.
    /// `cond` replaces the stored conditioning (e.g. one computed by DINOv2 from pixels).
    public static func runSparseStructureStage(_ fixture: FixtureCase, cond: Tensor? = nil) throws -> [TensorComparison] {
        let samplerTolerance = 1e-3
        guard let models = fixture.json["models"] as? [String: String],
              let flowStem = models["sparse_structure_flow_model"], let decoderStem = models["sparse_structure_decoder"],
              let samplerEntry = fixture.json["sparse_structure_sampler"] as? [String: Any] else {
            throw FixtureError.malformed(fixture.label, "no sparse-structure models or sampler entry")
        }
        func checkpoint(_ stem: String) throws -> (args: [String: Any], loader: WeightLoader) {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture.url("\(stem).json")))
            guard let args = (json as? [String: Any])?["args"] as? [String: Any] else {
                throw FixtureError.malformed(fixture.label, "\(stem).json has no args")
            }
            return (args, WeightLoader(try SafeTensors.open(fixture.url("\(stem).safetensors"))))
        }
        let (flowArgs, flowWeights) = try checkpoint(flowStem)
        let flow = try SparseStructureFlowModel(args: flowArgs, weights: flowWeights)
        let (decoderArgs, decoderWeights) = try checkpoint(decoderStem)
        let decoder = try SparseStructureDecoder(args: decoderArgs, weights: decoderWeights)

        let paramsData = try JSONSerialization.data(withJSONObject: samplerEntry["params"] ?? [:])
        let params = try JSONDecoder().decode(FlowEulerGuidanceIntervalSampler.Params.self, from: paramsData)
        let sigmaMin = (samplerEntry["args"] as? [String: Any])?["sigma_min"] as? Double ?? 1e-5
        let sampler = FlowEulerGuidanceIntervalSampler(sigmaMin: sigmaMin)

        let io = try fixture.io()
        var results: [TensorComparison] = []
        let schedule = FlowEulerGuidanceIntervalSampler.timeSchedule(steps: params.steps, rescaleT: params.rescaleT)
        results.append(try TensorComparison.compare("ss.t_seq", got: Tensor(schedule), expected: io.tensor("ss.t_seq"),
                                                    atol: 0))
        var call = 0
        var modelTimes: [Double] = []
        // The pipeline's model closure: each distinct condition's cross-attention keys/values computed once.
        let model = flow.samplerModel()
        let samples = try sampler.sample(model: { x, t, cond in
            modelTimes.append(t)
            return try model(x, t, cond)
        }, noise: io.tensor("ss.noise"), cond: cond ?? io.tensor("cond"), negCond: io.tensor("neg_cond"),
           params: params) { step in
            for v in step.modelOutputs {
                let time = try Tensor.full([1], value: modelTimes[step.index], dtype: .float32)
                results.append(try TensorComparison.compare("ss.call\(call).t", got: time,
                                                            expected: io.tensor("ss.call\(call).t"), atol: 0))
                results.append(try TensorComparison.compare("ss.call\(call).v", got: v,
                                                            expected: io.tensor("ss.call\(call).v"),
                                                            atol: samplerTolerance))
                call += 1
            }
            results.append(try TensorComparison.compare("ss.step\(step.index).x_prev", got: step.xPrev,
                                                        expected: io.tensor("ss.step\(step.index).x_prev"),
                                                        atol: samplerTolerance))
            results.append(try TensorComparison.compare("ss.step\(step.index).pred_x0", got: step.predX0,
                                                        expected: io.tensor("ss.step\(step.index).pred_x0"),
                                                        atol: samplerTolerance))
        }
        if io.info("ss.call\(call).v") != nil {
            throw FixtureError.malformed(fixture.label, "the sampler made \(call) model calls; the oracle made more")
        }
        results.append(try TensorComparison.compare("ss.samples", got: samples, expected: io.tensor("ss.samples"),
                                                    atol: samplerTolerance))
        let logits = try decoder(samples)
        results.append(try TensorComparison.compare("occupancy_logits", got: logits,
                                                    expected: io.tensor("occupancy_logits"), atol: samplerTolerance))
        results.append(try TensorComparison.exact("coords", got: SparseStructureDecoder.occupiedCoords(logits),
                                                  expected: io.tensor("coords")))
        return results
    }
}
