import ArgumentParser
import Foundation
import TorchShim

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Devices, libtorch version, models found.")

    func run() throws {
        print("gen3d \(Gen3D.version)")
        print("libtorch \(Torch.version), CPU threads \(Torch.numThreads)")
        print("shim built with CUDA: \(CUDA.shimHasCUDA ? "yes" : "no")")
        let n = CUDA.isAvailable ? CUDA.deviceCount : 0
        if n == 0 {
            print("CUDA devices: none (generation runs on the CPU: slow, for tests only)")
        }
        for d in 0..<n {
            let name = (try? CUDA.deviceName(d)) ?? "?"
            let cap = (try? CUDA.capability(d)).map { "sm_\($0.major)\($0.minor)" } ?? "?"
            let mem = (try? CUDA.memoryStats(d)).map { String(format: "%.1f GiB", Double($0.total) / 1_073_741_824) } ?? "?"
            print("cuda:\(d)  \(name)  \(cap)  \(mem)")
        }
    }
}
