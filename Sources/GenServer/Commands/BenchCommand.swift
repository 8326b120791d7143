import ArgumentParser
import Foundation
import TorchShim

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "microbench",
        abstract: "Stage benchmarks at real sizes with random weights on a device (not tests).",
        subcommands: [MatmulBench.self, FluxBench.self, TrellisBench.self, BiRefNetBench.self, ScorerBench.self,
                      PipelineBench.self, LGMBench.self])
}

/// Options every model benchmark takes.
struct DeviceOptions: ParsableArguments {
    @Option(help: "Device: cpu, cuda, cuda:N.") var device = "cuda"
    @Option(help: "Weights/activations dtype: bfloat16, float16, float32.") var dtype = "bfloat16"

    func resolved() throws -> (Device, DType) {
        guard let dev = Device(device) else { throw ValidationError("unknown device \(device)") }
        switch dtype {
        case "bfloat16", "bf16": return (dev, .bfloat16)
        case "float16", "fp16", "half": return (dev, .float16)
        case "float32", "fp32": return (dev, .float32)
        default: throw ValidationError("unknown dtype \(dtype)")
        }
    }
}

/// Prints a header naming the card, so every table says where it was measured.
func printBenchHeader(_ what: String, device: Device, dtype: DType) {
    let card = device.isCUDA ? ((try? CUDA.deviceName(0)) ?? "cuda") : "cpu"
    print("== \(what) on \(card) (\(dtype)), libtorch \(Torch.version)")
}

/// Times a dense GEMM through the shim: the ceiling every model stage is measured against.
struct MatmulBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "matmul", abstract: "n x n x n GEMM throughput.")

    @Option(help: "Matrix size.") var n = 8192
    @Option(help: "Device: cpu, cuda, cuda:N.") var device = "cuda"
    @Option(help: "dtype: bfloat16, float16, float32.") var dtype = "bfloat16"
    @Option(help: "Timed repetitions.") var iterations = 20

    func run() throws {
        guard let dev = Device(device) else { throw ValidationError("unknown device \(device)") }
        let dt: DType = dtype == "float16" ? .float16 : dtype == "float32" ? .float32 : .bfloat16
        let g = try Generator(seed: 0, device: dev)
        let a = try Tensor.randn([n, n], dtype: dt, device: dev, generator: g)
        let b = try Tensor.randn([n, n], dtype: dt, device: dev, generator: g)
        let sync = { if case .cuda(let i) = dev { try CUDA.synchronize(i) } }
        for _ in 0..<3 { _ = try a.matmul(b) }
        try sync()
        var times: [Double] = []
        for _ in 0..<iterations {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try a.matmul(b)
            try sync()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        let median = times[times.count / 2]
        let tflops = 2 * pow(Double(n), 3) / median / 1e12
        let name = dev.isCUDA ? ((try? CUDA.deviceName(0)) ?? "cuda") : "cpu"
        print(String(format: "swift-shim matmul %d^3 %@ on %@: median %.3f ms, %.1f TFLOP/s", n, dt.description, name,
                     median * 1e3, tflops))
    }
}
