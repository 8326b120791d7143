import ArgumentParser
import Foundation
import Models
import TorchShim

struct FluxBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flux", abstract: "FLUX.1-schnell stages: T5, CLIP, transformer (bf16 and fp8), VAE, at 512^2 and 1024^2.")
    @OptionGroup var options: DeviceOptions

    func run() throws {
        let (device, dtype) = try options.resolved()
        printBenchHeader("FLUX.1-schnell, random weights at real size", device: device, dtype: dtype)
        for row in try FluxBenchmark.run(device: device, dtype: dtype) { print(row) }
    }
}
