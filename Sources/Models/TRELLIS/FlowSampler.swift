import Foundation
import TorchShim

/// TRELLIS `FlowEulerGuidanceIntervalSampler` (trellis/pipelines/samplers/flow_euler.py + guidance_interval_mixin.py):
/// Euler steps of a rectified-flow model from t = 1 (noise) to t = 0, with classifier-free guidance applied only
/// while t lies inside `cfgInterval` (inclusive).
///
///     t_seq = linspace(1, 0, steps + 1);  t' = r·t / (1 + (r - 1)·t)          (float64, r = rescale_t)
///     v = model(x, 1000·t_i, cond)                                           outside the interval
///     v = (1 + s)·model(x, 1000·t_i, cond) - s·model(x, 1000·t_i, neg)        inside it
///     x <- x - (t_i - t_{i+1})·v;  pred_x0 = (1 - σmin)·x - (σmin + (1 - σmin)·t_i)·v
///
/// Inside the interval the conditional and unconditional passes run as ONE model call on
/// x' = cat([x, x], dim 0), cond' = cat([cond, negCond], dim 0), whose output is split in halves along dim 0
/// (first half conditional). The loop reads nothing back from the device.
public struct FlowEulerGuidanceIntervalSampler: Sendable {
    /// `params` of a pipeline.json sampler entry.
    public struct Params: Decodable, Sendable {
        public var steps: Int
        public var cfgStrength: Double
        public var cfgInterval: [Double]
        public var rescaleT: Double

        enum CodingKeys: String, CodingKey {
            case steps, cfgStrength = "cfg_strength", cfgInterval = "cfg_interval", rescaleT = "rescale_t"
        }

        public init(steps: Int = 25, cfgStrength: Double = 5.0, cfgInterval: [Double] = [0.5, 1.0],
                    rescaleT: Double = 3.0) {
            self.steps = steps
            self.cfgStrength = cfgStrength
            self.cfgInterval = cfgInterval
            self.rescaleT = rescaleT
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Params()
            steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? defaults.steps
            cfgStrength = try c.decodeIfPresent(Double.self, forKey: .cfgStrength) ?? defaults.cfgStrength
            cfgInterval = try c.decodeIfPresent([Double].self, forKey: .cfgInterval) ?? defaults.cfgInterval
            rescaleT = try c.decodeIfPresent(Double.self, forKey: .rescaleT) ?? defaults.rescaleT
        }
    }

    /// One denoiser evaluation: x, the model time 1000·t, and the conditioning with the same leading batch as the
    /// call (for a sparse model, x is the feature matrix and cond's batch tells how many copies x holds).
    public typealias Model = (_ x: Tensor, _ t: Double, _ cond: Tensor) throws -> Tensor

    /// What one step produced (for inspection; `predX0` is computed only when an observer is given).
    public struct Step {
        public let index: Int
        public let t: Double
        public let tPrev: Double
        public let guided: Bool
        /// The raw model output(s): one tensor, or [conditional, unconditional] when guided.
        public let modelOutputs: [Tensor]
        public let velocity: Tensor
        public let xPrev: Tensor
        public let predX0: Tensor
    }

    public var sigmaMin: Double

    public init(sigmaMin: Double = 1e-5) { self.sigmaMin = sigmaMin }

    /// The step times t_0 = 1 > t_1 > ... > t_steps = 0 exactly as numpy computes them in float64.
    public static func timeSchedule(steps: Int, rescaleT: Double) -> [Double] {
        guard steps > 0 else { return [1] }
        let delta = (0.0 - 1.0) / Double(steps)
        var t = (0...steps).map { Double($0) * delta + 1.0 }
        t[steps] = 0
        return t.map { rescaleT * $0 / (1 + (rescaleT - 1) * $0) }
    }

    /// Whether step time `t` gets classifier-free guidance (inclusive interval).
    public static func isGuided(_ t: Double, params: Params) -> Bool {
        params.cfgInterval[0] <= t && t <= params.cfgInterval[1]
    }

    public func sample(model: Model, noise: Tensor, cond: Tensor, negCond: Tensor, params: Params,
                       onStep: ((Step) throws -> Void)? = nil) throws -> Tensor {
        guard params.steps > 0 else { throw TrellisError.badInput("sampler steps must be positive, got \(params.steps)") }
        guard params.cfgInterval.count == 2 else {
            throw TrellisError.badInput("cfg_interval needs 2 values, got \(params.cfgInterval)")
        }
        guard negCond.shape == cond.shape else {
            throw TrellisError.badInput("neg_cond shape \(negCond.shape) differs from cond shape \(cond.shape)")
        }
        let schedule = FlowEulerGuidanceIntervalSampler.timeSchedule(steps: params.steps, rescaleT: params.rescaleT)
        let s = params.cfgStrength
        // Both conditions stacked once; guided steps reuse it.
        let pairedCond = try Tensor.cat([cond, negCond], dim: 0)
        var x = noise
        for i in 0..<params.steps {
            let (t, tPrev) = (schedule[i], schedule[i + 1])
            let modelTime = 1000 * t
            let guided = FlowEulerGuidanceIntervalSampler.isGuided(t, params: params)
            let outputs: [Tensor]
            let v: Tensor
            if guided {
                let out = try model(Tensor.cat([x, x], dim: 0), modelTime, pairedCond)
                guard out.size(0) == 2 * x.size(0) else {
                    throw TrellisError.badInput("model returned \(out.size(0)) rows for a batched call of \(2 * x.size(0))")
                }
                outputs = try out.chunk(2, dim: 0)
                v = try outputs[0] * (1 + s) - outputs[1] * s
            } else {
                outputs = [try model(x, modelTime, cond)]
                v = outputs[0]
            }
            let xPrev = try x - v * (t - tPrev)
            if let onStep {
                let predX0 = try x * (1 - sigmaMin) - v * (sigmaMin + (1 - sigmaMin) * t)
                try onStep(Step(index: i, t: t, tPrev: tPrev, guided: guided, modelOutputs: outputs, velocity: v,
                                xPrev: xPrev, predX0: predX0))
            }
            x = xPrev
        }
        return x
    }
}
