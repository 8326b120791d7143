import ArgumentParser
import Foundation
import ModelStore
import Pipeline
import TorchShim

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Devices, libtorch version, the models found, and the memory plan of each GPU.")

    @Option(name: .customLong("models-dir"), help: "Folder holding models already downloaded (repeatable).")
    var modelsDirs: [String] = []
    @Option(help: "Generators the plan is estimated for, e.g. trellis or trellis,lgm.") var generator = "trellis"

    func run() throws {
        let generators = try GeneratorOptions.parseGenerators(generator)
        print("gen3d \(Gen3D.version)")
        print("libtorch \(Torch.version), CPU threads \(Torch.numThreads)")
        print("shim built with CUDA: \(CUDA.shimHasCUDA ? "yes" : "no")")
        let n = CUDA.isAvailable ? CUDA.deviceCount : 0
        if n == 0 {
            print("CUDA devices: none (generation runs on the CPU: slow, for tests only)")
        }
        let models = PipelineAssembly.models(generators: generators)
        for d in 0..<n {
            let name = (try? CUDA.deviceName(d)) ?? "?"
            let cap = (try? CUDA.capability(d)).map { "sm_\($0.major)\($0.minor)" } ?? "?"
            let total = try CUDA.memoryStats(d).total
            print("cuda:\(d)  \(name)  \(cap)  \(GiB.text(total))")
            let plan = MemoryPlan.choose(device: .cuda(d), budgetBytes: total)
            print(MemoryPlanReport.lines(plan, resident: ResidentSizes(device: .cpu)).map { "  " + $0 }.joined(separator: "\n"))
            print("  estimated weights on the GPU (registry parameter counts at our dtypes; measured sizes: /health):")
            for spec in models {
                print("    \(spec.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(GiB.text(plan.estimatedWeightBytes(spec)))")
            }
            let peak = plan.estimatedPeakBytes(models: models)
            print("  estimated job peak \(GiB.text(peak)) of \(GiB.text(total)): \(peak <= total ? "fits" : "DOES NOT FIT; try --memory-plan 24gb")")
        }
        print("models (\(generators.map(\.rawValue).joined(separator: ", "))):")
        let report = ModelStore(modelsDirectories: modelsDirs).check(models: models)
        for m in report.models {
            print("  \(m.name.padding(toLength: 24, withPad: " ", startingAt: 0)) "
                  + (m.present ? "present  \(m.location?.path ?? "")" : "missing  \(m.fetchCommand ?? "gen3d fetch --model \(m.name)")"))
        }
    }
}
