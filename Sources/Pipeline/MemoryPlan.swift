import Foundation
import ModelStore
import TorchShim

/// How the models share one GPU: which stay resident, in which dtype, and which are streamed from host memory.
/// Chosen from the memory the worker may use (the card, or the `--cap-gib` cap), or named explicitly.
///
/// Tiers (weights at our GPU dtypes: fp16 / bf16, the FLUX transformer optionally fp8 e4m3):
/// - `resident` (>= 38 GiB): every model resident, FLUX in bf16. Measured on an H100: 36.5 GiB peak for a whole job.
/// - `24gb` (>= 20 GiB, e.g. RTX 4090): FLUX transformer in fp8 (11.0 GiB instead of 22.0), T5-XXL's blocks in pinned
///   host memory, each copied in for its turn (0.4 GiB on the GPU instead of 8.9 GiB; costs one 9 GB host -> GPU copy per
///   text prompt), the rest resident.
/// - `image-only` (< 20 GiB): FLUX is not loaded (text prompts answer 503); image prompts work.
/// - `host`: the CPU (no GPU memory to plan).
public struct MemoryPlan: Sendable, Equatable {
    public enum Tier: String, Sendable, CaseIterable {
        case resident
        case compact = "24gb"
        case imageOnly = "image-only"
        case host
    }

    /// Budgets at or above these pick the tier (GiB).
    public static let residentMinimumGiB = 38.0
    public static let compactMinimumGiB = 20.0
    /// Activations and workspace above the resident weights during a job: measured peak minus resident weights of the
    /// whole job at 512 px FLUX and 20K TRELLIS voxels on an H100 (docs/BENCHMARKS.md), rounded up.
    public static let workingGiB = 3.0

    public let tier: Tier
    /// The memory this worker may use (card total or cap), bytes; nil on the CPU.
    public let budgetBytes: Int64?
    /// Why this tier (chosen by size, or named).
    public let reason: String

    public var loadsTextToImage: Bool { tier != .imageOnly }
    public var fluxFloat8: Bool { tier == .compact }
    /// Images per BiRefNet forward when several are cut out at once (the MVDream route's four views): four need ~6 GiB
    /// of activations, which the 24 GB plan does not have.
    public var backgroundBatch: Int { tier == .compact ? 1 : 4 }
    /// T5-XXL's blocks live in pinned host memory and are copied in one at a time.
    public var t5StreamedFromHost: Bool { tier == .compact }

    public init(tier: Tier, budgetBytes: Int64?, reason: String) {
        self.tier = tier
        self.budgetBytes = budgetBytes
        self.reason = reason
    }

    /// The plan for `device` with `budgetBytes` usable (nil: the CPU); `requested` overrides the choice by size.
    public static func choose(device: Device, budgetBytes: Int64?, requested: Tier? = nil) -> MemoryPlan {
        guard device.isCUDA, let budget = budgetBytes else {
            return MemoryPlan(tier: .host, budgetBytes: nil, reason: "CPU: every model in host memory")
        }
        let gib = GiB.value(budget)
        if let requested, requested != .host {
            return MemoryPlan(tier: requested, budgetBytes: budget, reason: String(format: "named (--memory-plan), %.1f GiB usable", gib))
        }
        let tier: Tier = gib >= residentMinimumGiB ? .resident : gib >= compactMinimumGiB ? .compact : .imageOnly
        return MemoryPlan(tier: tier, budgetBytes: budget, reason: String(format: "%.1f GiB usable", gib))
    }

    /// The plan for `device`: the budget is `capBytes` when given, else the card's total memory.
    public static func forDevice(_ device: Device, capBytes: Int64? = nil, requested: Tier? = nil) throws -> MemoryPlan {
        guard case .cuda(let i) = device else { return choose(device: device, budgetBytes: nil) }
        let budget = try capBytes ?? CUDA.memoryStats(i).total
        return choose(device: device, budgetBytes: budget, requested: requested)
    }

    /// One line per policy decision, for the log, `info` and /health.
    public var policy: [String] {
        switch tier {
        case .resident:
            return ["every model resident on the GPU", "FLUX transformer bf16", "T5-XXL resident (bf16)"]
        case .compact:
            return ["FLUX transformer fp8 e4m3 (half the bf16 size)",
                    "T5-XXL blocks in pinned host memory, copied to the GPU one block at a time per prompt",
                    "BiRefNet one image per forward", "everything else resident"]
        case .imageOnly:
            return ["FLUX.1-schnell not loaded (needs >= \(Int(MemoryPlan.compactMinimumGiB)) GiB): text prompts answer 503",
                    "image -> 3D models and scorers resident"]
        case .host:
            return ["CPU: every model in host memory"]
        }
    }

    /// Estimated GPU bytes of a model's weights under this plan, from the registry's parameter counts at our dtypes
    /// (2 bytes; the fp8 transformer 1; streamed T5: its embedding table plus one block).
    public func estimatedWeightBytes(_ spec: ModelSpec) -> Int64 {
        guard tier != .host else { return 0 }
        if spec.name == "flux1-schnell" && !loadsTextToImage { return 0 }
        return spec.components.reduce(Int64(0)) { total, c in
            let name = c.name.lowercased()
            if spec.name == "flux1-schnell" && name == "transformer" && fluxFloat8 { return total + c.parameters }
            if name.contains("t5-xxl") && t5StreamedFromHost {
                let embedding: Int64 = 32_128 * 4096
                return total + 2 * (embedding + (c.parameters - embedding) / 24)
            }
            return total + 2 * c.parameters
        }
    }

    /// Estimated peak of one job: the models' weights plus the working set.
    public func estimatedPeakBytes(models: [ModelSpec]) -> Int64 {
        guard tier != .host else { return 0 }
        return models.reduce(Int64(MemoryPlan.workingGiB * GiB.bytes)) { $0 + estimatedWeightBytes($1) }
    }

    /// The generators this plan loads, in order: the first always; each further one only while the estimated peak of
    /// the whole set stays within the budget (a 24 GB card holds FLUX fp8 + TRELLIS, or FLUX fp8 + LGM, not all three).
    public func admit(generators: [GeneratorID]) -> (load: [GeneratorID], dropped: [GeneratorID]) {
        guard let budget = budgetBytes, let first = generators.first else { return (generators, []) }
        var load = [first], dropped: [GeneratorID] = []
        for g in generators.dropFirst() {
            if estimatedPeakBytes(models: PipelineAssembly.models(generators: load + [g])) <= budget { load.append(g) } else { dropped.append(g) }
        }
        return (load, dropped)
    }

    /// Why `generator` (left out by `admit`) is not loaded, for the log and /health's `missing`.
    public func notAdmitted(_ generator: GeneratorID) -> String {
        "\(generator.rawValue): not loaded under the \(tier.rawValue) memory plan (\(reason)): the estimated peak with it exceeds the "
            + "budget; serve it from its own daemon or a larger card"
    }

}

/// Measured GPU memory of each model as it loads (allocated bytes after minus before), in load order.
public struct ResidentSizes: Sendable {
    public private(set) var entries: [(name: String, bytes: Int64)] = []
    let cudaIndex: Int?

    public init(device: Device) {
        if case .cuda(let i) = device { cudaIndex = i } else { cudaIndex = nil }
    }

    public mutating func measure<T>(_ name: String, _ body: () throws -> T) throws -> T {
        guard let i = cudaIndex else { return try body() }
        let before = try CUDA.memoryStats(i).allocated
        let value = try body()
        entries.append((name, try CUDA.memoryStats(i).allocated - before))
        return value
    }

    public var total: Int64 { entries.reduce(0) { $0 + $1.bytes } }
}

/// The memory plan as text (log, `info`, benchmarks) and as JSON (/health).
public enum MemoryPlanReport {

    public static func lines(_ plan: MemoryPlan, resident: ResidentSizes) -> [String] {
        var out = ["memory plan: \(plan.tier.rawValue) (\(plan.reason))"] + plan.policy.map { "  - " + $0 }
        for e in resident.entries { out.append("  resident \(e.name): \(GiB.text(e.bytes))") }
        if !resident.entries.isEmpty { out.append("  resident total: \(GiB.text(resident.total))") }
        return out
    }

    public static func json(_ plan: MemoryPlan, resident: ResidentSizes, models: [ModelSpec]) -> [String: Any] {
        /// GiB rounded to `places` decimals, for JSON.
        func gib(_ bytes: Int64, places: Double = 2) -> Double {
            let scale = pow(10, places)
            return (GiB.value(bytes) * scale).rounded() / scale
        }
        var h: [String: Any] = ["plan": plan.tier.rawValue, "reason": plan.reason, "policy": plan.policy]
        if let budget = plan.budgetBytes {
            h["budget_gib"] = gib(budget)
            let peak = plan.estimatedPeakBytes(models: models)
            h["estimated_peak_gib"] = gib(peak)
            h["estimate_fits"] = peak <= budget
        }
        if !resident.entries.isEmpty {
            var sizes: [String: Double] = [:]
            for e in resident.entries { sizes[e.name] = gib(e.bytes, places: 3) }
            h["resident_gib"] = sizes
            h["resident_total_gib"] = gib(resident.total)
        }
        return h
    }
}
