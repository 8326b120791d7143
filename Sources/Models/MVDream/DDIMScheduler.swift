import Foundation
import NN
import TorchShim

/// diffusers `DDIMScheduler` for inference (deterministic steps: eta 0): the training schedule's cumulative alphas in
/// float32 as diffusers computes them, the inference timesteps, and the step x_t -> x_{t-1}.
public struct DDIMScheduler: Sendable {
    public struct Config: Decodable, Sendable, Equatable {
        public var numTrainTimesteps: Int
        public var betaStart: Double
        public var betaEnd: Double
        public var betaSchedule: String
        public var clipSample: Bool
        public var clipSampleRange: Double
        public var setAlphaToOne: Bool
        public var stepsOffset: Int
        public var predictionType: String
        public var timestepSpacing: String
        public var thresholding: Bool
        public var rescaleBetasZeroSnr: Bool

        enum CodingKeys: String, CodingKey {
            case numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start", betaEnd = "beta_end"
            case betaSchedule = "beta_schedule", clipSample = "clip_sample", clipSampleRange = "clip_sample_range"
            case setAlphaToOne = "set_alpha_to_one", stepsOffset = "steps_offset", predictionType = "prediction_type"
            case timestepSpacing = "timestep_spacing", thresholding, rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        }

        /// The scheduler the MVDream/ImageDream converter writes (SD 2.1 schedule, "leading" spacing, offset 1).
        public init(numTrainTimesteps: Int = 1000, betaStart: Double = 0.00085, betaEnd: Double = 0.012,
                    betaSchedule: String = "scaled_linear", clipSample: Bool = false, setAlphaToOne: Bool = false,
                    stepsOffset: Int = 1, predictionType: String = "epsilon", timestepSpacing: String = "leading") {
            self.numTrainTimesteps = numTrainTimesteps
            self.betaStart = betaStart
            self.betaEnd = betaEnd
            self.betaSchedule = betaSchedule
            self.clipSample = clipSample
            clipSampleRange = 1
            self.setAlphaToOne = setAlphaToOne
            self.stepsOffset = stepsOffset
            self.predictionType = predictionType
            self.timestepSpacing = timestepSpacing
            thresholding = false
            rescaleBetasZeroSnr = false
        }

        /// Missing fields take the diffusers class defaults.
        public init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps) ?? 1000
            betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart) ?? 0.0001
            betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd) ?? 0.02
            betaSchedule = try c.decodeIfPresent(String.self, forKey: .betaSchedule) ?? "linear"
            clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample) ?? true
            clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange) ?? 1
            setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne) ?? true
            stepsOffset = try c.decodeIfPresent(Int.self, forKey: .stepsOffset) ?? 0
            predictionType = try c.decodeIfPresent(String.self, forKey: .predictionType) ?? "epsilon"
            timestepSpacing = try c.decodeIfPresent(String.self, forKey: .timestepSpacing) ?? "leading"
            thresholding = try c.decodeIfPresent(Bool.self, forKey: .thresholding) ?? false
            rescaleBetasZeroSnr = try c.decodeIfPresent(Bool.self, forKey: .rescaleBetasZeroSnr) ?? false
        }

        func validate() throws {
            guard ["linear", "scaled_linear"].contains(betaSchedule) else {
                throw WeightError.badConfig("DDIM beta_schedule '\(betaSchedule)' is not implemented (linear, scaled_linear)")
            }
            guard ["epsilon", "v_prediction", "sample"].contains(predictionType) else {
                throw WeightError.badConfig("DDIM prediction_type '\(predictionType)' is not implemented")
            }
            guard ["leading", "trailing", "linspace"].contains(timestepSpacing) else {
                throw WeightError.badConfig("DDIM timestep_spacing '\(timestepSpacing)' is not implemented")
            }
            guard !thresholding, !rescaleBetasZeroSnr else {
                throw WeightError.badConfig("DDIM thresholding / rescale_betas_zero_snr are not implemented")
            }
            guard numTrainTimesteps >= 2 else { throw WeightError.badConfig("num_train_timesteps \(numTrainTimesteps) < 2") }
        }
    }

    public let config: Config
    /// The inference timesteps, from the noisiest.
    public let timesteps: [Int]
    /// alphas_cumprod[t] in float32.
    let alphasCumprod: [Float]
    let stepRatio: Int

    public init(config: Config, steps: Int) throws {
        try config.validate()
        let n = config.numTrainTimesteps
        guard steps >= 1, steps <= n else { throw LGMError("DDIM needs 1...\(n) inference steps, got \(steps)") }
        self.config = config
        let betas: Tensor
        if config.betaSchedule == "scaled_linear" {
            betas = try Tensor.linspace(config.betaStart.squareRoot(), config.betaEnd.squareRoot(), steps: n).square()
        } else {
            betas = try Tensor.linspace(config.betaStart, config.betaEnd, steps: n)
        }
        alphasCumprod = try (1.0 - betas).cumprod(0).floats()
        stepRatio = n / steps
        switch config.timestepSpacing {
        case "leading":
            timesteps = (0..<steps).reversed().map { $0 * (n / steps) + config.stepsOffset }
        case "trailing":
            let ratio = Double(n) / Double(steps)
            timesteps = stride(from: Double(n), to: 0, by: -ratio).map { Int($0.rounded(.toNearestOrEven)) - 1 }  // numpy rounds half to even
        default:  // linspace
            timesteps = (0..<steps).map { Int((Double(n - 1) * Double($0) / Double(max(steps - 1, 1))).rounded(.toNearestOrEven)) }.reversed()
        }
    }

    /// The timestep before `t` in the inference schedule's arithmetic (t - train_steps // steps).
    func previous(_ t: Int) -> Int { t - stepRatio }

    func alpha(_ t: Int) -> Float {
        t >= 0 ? alphasCumprod[t] : (config.setAlphaToOne ? 1 : alphasCumprod[0])
    }

    /// x_t -> x_{t-1} for the model output at timestep `t` (eta 0: no noise is added).
    public func step(modelOutput: Tensor, timestep t: Int, sample: Tensor) throws -> Tensor {
        guard t >= 0, t < alphasCumprod.count else { throw LGMError("DDIM timestep \(t) outside 0..<\(alphasCumprod.count)") }
        let a = alpha(t), aPrev = alpha(previous(t))
        let b = 1 - a
        var x0: Tensor, eps: Tensor
        switch config.predictionType {
        case "epsilon":
            x0 = try (sample - modelOutput * Double(b.squareRoot())) / Double(a.squareRoot())
            eps = modelOutput
        case "sample":
            x0 = modelOutput
            eps = try (sample - modelOutput * Double(a.squareRoot())) / Double(b.squareRoot())
        default:  // v_prediction
            x0 = try sample * Double(a.squareRoot()) - modelOutput * Double(b.squareRoot())
            eps = try modelOutput * Double(a.squareRoot()) + sample * Double(b.squareRoot())
        }
        if config.clipSample { x0 = try x0.clamp(min: -config.clipSampleRange, max: config.clipSampleRange) }
        return try x0 * Double(aPrev.squareRoot()) + eps * Double((1 - aPrev).squareRoot())
    }
}
