import Foundation
import NN
import TorchShim

/// diffusers `FlowMatchEulerDiscreteScheduler` (the deterministic Euler flow-matching sampler of FLUX/SD3).
/// Sigmas and timesteps are host-side float32 values, computed with the reference's float32 arithmetic, so the
/// sampling loop never reads from the device.
public struct FlowMatchEulerScheduler: Sendable {
    public struct Config: Decodable, Sendable {
        public var numTrainTimesteps: Int
        public var shift: Double
        public var useDynamicShifting: Bool
        public var baseShift: Double
        public var maxShift: Double
        public var baseImageSeqLen: Int
        public var maxImageSeqLen: Int
        public var timeShiftType: String
        public var shiftTerminal: Double?
        public var invertSigmas: Bool
        public var useKarrasSigmas: Bool
        public var useExponentialSigmas: Bool
        public var useBetaSigmas: Bool
        public var stochasticSampling: Bool

        enum CodingKeys: String, CodingKey {
            case numTrainTimesteps = "num_train_timesteps", shift, useDynamicShifting = "use_dynamic_shifting"
            case baseShift = "base_shift", maxShift = "max_shift", baseImageSeqLen = "base_image_seq_len"
            case maxImageSeqLen = "max_image_seq_len", timeShiftType = "time_shift_type"
            case shiftTerminal = "shift_terminal", invertSigmas = "invert_sigmas"
            case useKarrasSigmas = "use_karras_sigmas", useExponentialSigmas = "use_exponential_sigmas"
            case useBetaSigmas = "use_beta_sigmas", stochasticSampling = "stochastic_sampling"
        }

        /// FLUX.1-schnell's scheduler_config.json.
        public init(numTrainTimesteps: Int = 1000, shift: Double = 1.0, useDynamicShifting: Bool = false,
                    baseShift: Double = 0.5, maxShift: Double = 1.15, baseImageSeqLen: Int = 256,
                    maxImageSeqLen: Int = 4096, timeShiftType: String = "exponential", shiftTerminal: Double? = nil,
                    invertSigmas: Bool = false) {
            self.numTrainTimesteps = numTrainTimesteps
            self.shift = shift
            self.useDynamicShifting = useDynamicShifting
            self.baseShift = baseShift
            self.maxShift = maxShift
            self.baseImageSeqLen = baseImageSeqLen
            self.maxImageSeqLen = maxImageSeqLen
            self.timeShiftType = timeShiftType
            self.shiftTerminal = shiftTerminal
            self.invertSigmas = invertSigmas
            useKarrasSigmas = false
            useExponentialSigmas = false
            useBetaSigmas = false
            stochasticSampling = false
        }

        public init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Config()
            numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps) ?? d.numTrainTimesteps
            shift = try c.decodeIfPresent(Double.self, forKey: .shift) ?? d.shift
            useDynamicShifting = try c.decodeIfPresent(Bool.self, forKey: .useDynamicShifting) ?? d.useDynamicShifting
            baseShift = try c.decodeIfPresent(Double.self, forKey: .baseShift) ?? d.baseShift
            maxShift = try c.decodeIfPresent(Double.self, forKey: .maxShift) ?? d.maxShift
            baseImageSeqLen = try c.decodeIfPresent(Int.self, forKey: .baseImageSeqLen) ?? d.baseImageSeqLen
            maxImageSeqLen = try c.decodeIfPresent(Int.self, forKey: .maxImageSeqLen) ?? d.maxImageSeqLen
            timeShiftType = try c.decodeIfPresent(String.self, forKey: .timeShiftType) ?? d.timeShiftType
            shiftTerminal = try c.decodeIfPresent(Double.self, forKey: .shiftTerminal)
            invertSigmas = try c.decodeIfPresent(Bool.self, forKey: .invertSigmas) ?? false
            useKarrasSigmas = try c.decodeIfPresent(Bool.self, forKey: .useKarrasSigmas) ?? false
            useExponentialSigmas = try c.decodeIfPresent(Bool.self, forKey: .useExponentialSigmas) ?? false
            useBetaSigmas = try c.decodeIfPresent(Bool.self, forKey: .useBetaSigmas) ?? false
            stochasticSampling = try c.decodeIfPresent(Bool.self, forKey: .stochasticSampling) ?? false
        }
    }

    public let config: Config
    /// sigmas[0..<steps] then the terminal 0 (steps + 1 values).
    public let sigmas: [Float]
    /// sigma * num_train_timesteps for each step.
    public let timesteps: [Float]

    public var steps: Int { timesteps.count }

    /// diffusers' `calculate_shift`: mu grows linearly with the number of image tokens.
    public static func calculateShift(imageSeqLen: Int, baseSeqLen: Int = 256, maxSeqLen: Int = 4096,
                                      baseShift: Double = 0.5, maxShift: Double = 1.15) -> Double {
        let m = (maxShift - baseShift) / Double(maxSeqLen - baseSeqLen)
        let b = baseShift - m * Double(baseSeqLen)
        return Double(imageSeqLen) * m + b
    }

    /// The schedule `FluxPipeline` asks for: sigmas = linspace(1, 1/steps, steps), shifted by the config (with
    /// `mu` from calculate_shift(imageSeqLen) when the config shifts dynamically).
    public init(config: Config, steps: Int, imageSeqLen: Int) throws {
        guard steps >= 1 else { throw FluxError("the number of inference steps must be at least 1, got \(steps)") }
        // numpy.linspace(1, 1/steps, steps) in float64: i * step + start, the last value set to stop.
        let stop = 1.0 / Double(steps)
        let delta = steps > 1 ? (stop - 1.0) / Double(steps - 1) : 0
        var base = (0..<steps).map { Double($0) * delta + 1.0 }
        if steps > 1 { base[steps - 1] = stop }
        let mu = FlowMatchEulerScheduler.calculateShift(
            imageSeqLen: imageSeqLen, baseSeqLen: config.baseImageSeqLen, maxSeqLen: config.maxImageSeqLen,
            baseShift: config.baseShift, maxShift: config.maxShift)
        try self.init(config: config, sigmas: base, mu: config.useDynamicShifting ? mu : nil)
    }

    /// `set_timesteps(sigmas=..., mu=...)`: shifts the given sigmas (float32) and appends the terminal sigma.
    public init(config: Config, sigmas input: [Double], mu: Double? = nil) throws {
        guard !input.isEmpty else { throw FluxError("the scheduler needs at least one sigma") }
        if config.useKarrasSigmas || config.useExponentialSigmas || config.useBetaSigmas || config.stochasticSampling {
            throw FluxError("karras/exponential/beta sigmas and stochastic sampling are not implemented")
        }
        if config.useDynamicShifting && mu == nil { throw FluxError("mu must be given when use_dynamic_shifting is true") }
        self.config = config
        var s = input.map { Float($0) }
        if config.useDynamicShifting, let mu {
            s = try s.map { try FlowMatchEulerScheduler.timeShift(type: config.timeShiftType, mu: mu, sigma: 1.0, t: $0) }
        } else {
            let shift = Float(config.shift)
            s = s.map { shift * $0 / (1 + (shift - 1) * $0) }
        }
        if let terminal = config.shiftTerminal, terminal != 0 {
            let scale = (1 - s[s.count - 1]) / (1 - Float(terminal))
            s = s.map { 1 - (1 - $0) / scale }
        }
        let train = Float(config.numTrainTimesteps)
        if config.invertSigmas {
            s = s.map { 1 - $0 }
            timesteps = s.map { $0 * train }
            sigmas = s + [1]
        } else {
            timesteps = s.map { $0 * train }
            sigmas = s + [0]
        }
    }

    /// exp(mu) / (exp(mu) + (1/t - 1)^sigma) ("exponential") or mu / (mu + (1/t - 1)^sigma) ("linear"), in float32.
    static func timeShift(type: String, mu: Double, sigma: Double, t: Float) throws -> Float {
        let odds = Float(Foundation.pow(Double(1 / t - 1), sigma))
        switch type {
        case "exponential":
            let e = Float(Foundation.exp(mu))
            return e / (e + odds)
        case "linear":
            return Float(mu) / (Float(mu) + odds)
        default:
            throw FluxError("time_shift_type must be 'exponential' or 'linear', got '\(type)'")
        }
    }

    /// One Euler step: sample + (sigma[i+1] - sigma[i]) * velocity, accumulated in float32 and returned in the
    /// velocity's dtype (as diffusers).
    public func step(velocity: Tensor, sample: Tensor, index: Int) throws -> Tensor {
        guard index >= 0, index < steps else { throw FluxError("step index \(index) outside 0..<\(steps)") }
        let dt = sigmas[index + 1] - sigmas[index]
        return try (sample.to(.float32) + velocity * Double(dt)).to(velocity.dtype)
    }
}
