import PLY
import Foundation

/// Times `PLYWriter` on a random splat (the CLI's `bench-ply` calls this; not a unit test).
public enum PLYBenchmark {
    /// Builds a random SH-degree-0 splat without normals (the LGM/TRELLIS-like 14-float layout) and
    /// returns the median wall time of `repetitions` encodes and the file size in bytes.
    public static func run(gaussians: Int = 500_000, repetitions: Int = 7) -> (seconds: Double, bytes: Int) {
        let splat = randomSplat(count: max(0, gaussians), seed: 0x5EED)
        let writer = PLYWriter()
        let layout = GaussianLayout(hasNormals: false, shDegree: 0)
        precondition((try? splat.validateLayout()) != nil && (try? writer.layout(for: splat)) == layout)
        var times: [Double] = []
        var bytes = 0
        for _ in 0..<max(1, repetitions) {
            let start = DispatchTime.now().uptimeNanoseconds
            let data = PLYWriter.encodeValidated(splat, layout: layout)
            let end = DispatchTime.now().uptimeNanoseconds
            bytes = data.count
            times.append(Double(end - start) / 1e9)
        }
        times.sort()
        return (times[times.count / 2], bytes)
    }

    /// A deterministic random splat (SplitMix64) with values in realistic ranges.
    public static func randomSplat(count: Int, seed: UInt64, shDegree: Int = 0, normals: Bool = false) -> GaussianSplat {
        var state = seed
        func uniform(_ low: Float, _ high: Float) -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return low + (high - low) * Float(z >> 40) / Float(1 << 24)
        }
        func values(_ n: Int, _ low: Float, _ high: Float) -> [Float] {
            [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
                for i in 0..<n { buffer[i] = uniform(low, high) }
                initialized = n
            }
        }
        return GaussianSplat(
            positions: values(3 * count, -0.5, 0.5),
            normals: normals ? values(3 * count, -1, 1) : nil,
            shDC: values(3 * count, -2, 2),
            shRest: values(GaussianSplat.restCount(degree: shDegree) * count, -0.5, 0.5),
            shDegree: shDegree,
            opacities: values(count, -6, 8),
            scales: values(3 * count, -10, -2),
            rotations: values(4 * count, -1, 1))
    }
}
