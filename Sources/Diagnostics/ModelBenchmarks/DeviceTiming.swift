import NN
import Foundation
import TorchShim

/// How every stage benchmark times work on a device: warm-up, then the median wall time of synchronised runs, and
/// the peak device memory allocated during the timed runs.
public enum DeviceTiming {
    /// Median wall time of `body` (ms) over `iterations` runs after `warmup`, the device synchronised around each
    /// run; the peak allocated device memory of the timed runs (nil on the CPU).
    public static func measure(device: Device, warmup: Int, iterations: Int, _ body: () throws -> Void) throws
        -> (ms: Double, peakGiB: Double?) {
        func sync() throws { if case .cuda(let i) = device { try CUDA.synchronize(i) } }
        for _ in 0..<warmup { try body() }
        try sync()
        if case .cuda(let i) = device { try CUDA.resetPeakMemory(i) }
        var times: [Double] = []
        for _ in 0..<max(iterations, 1) {
            try sync()
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            try sync()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        var peak: Double? = nil
        if case .cuda(let i) = device { peak = GiB.value(try CUDA.memoryStats(i).peakAllocated) }
        return (times[times.count / 2], peak)
    }

    /// `text` followed by the peak memory when there is one.
    public static func note(_ text: String, _ peak: Double?) -> String {
        peak.map { text + String(format: ", peak %.2f GiB", $0) } ?? text
    }
}
