import ArgumentParser
import Diagnostics
import Foundation
import PLY

struct BenchPLYCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ply", abstract: "Time writing a random splat as one binary PLY buffer (goal: 500K in <= 50 ms).")

    @Option(help: "Number of Gaussians.") var gaussians = 500_000
    @Option(help: "Timed repetitions (median reported).") var repetitions = 7

    func run() throws {
        let r = PLYBenchmark.run(gaussians: gaussians, repetitions: repetitions)
        print(String(format: "PLY write: %d Gaussians, %.1f MB, median %.2f ms", gaussians, Double(r.bytes) / 1e6, r.seconds * 1e3))
    }
}
