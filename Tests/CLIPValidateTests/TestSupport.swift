import CLIPValidate
import Foundation
import Splatting
import PLY
import XCTest

/// The shared fixtures folder: walks up from this file to the first directory holding `shared/fixtures`.
enum Fixtures {
    static func directory(file: StaticString = #filePath) throws -> URL {
        var dir = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("shared/fixtures")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        throw TestPLYError("no shared/fixtures above \(file)")
    }

    static func hamburger() throws -> GaussianSplat {
        try TestPLY.load(try directory().appendingPathComponent("ply/hamburger.ply"))
    }
}

struct TestPLYError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A minimal reader for binary little-endian 3DGS PLY files whose properties are all float (test-only;
/// the real reader lives in the PLY target).
enum TestPLY {
    static func load(_ url: URL) throws -> GaussianSplat {
        let data = try Data(contentsOf: url)
        guard let end = data.range(of: Data("end_header\n".utf8)) else { throw TestPLYError("no end_header") }
        let header = String(decoding: data[..<end.lowerBound], as: UTF8.self)
        var count = 0
        var names: [String] = []
        var binaryLE = false
        for line in header.split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            if parts.starts(with: ["format", "binary_little_endian"]) { binaryLE = true }
            if parts.count == 3, parts[0] == "element", parts[1] == "vertex" { count = Int(parts[2]) ?? 0 }
            if parts.count == 3, parts[0] == "property" {
                guard parts[1] == "float" else { throw TestPLYError("property \(parts[2]) is \(parts[1])") }
                names.append(parts[2])
            }
        }
        guard binaryLE, count > 0 else { throw TestPLYError("not a binary little-endian PLY with vertices") }
        let stride = names.count
        let body = data[end.upperBound...]
        guard body.count >= count * stride * 4 else { throw TestPLYError("truncated body") }
        var floats = [Float](repeating: 0, count: count * stride)
        floats.withUnsafeMutableBytes { dst in
            body.withUnsafeBytes { src in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<(count * stride * 4)]))
            }
        }
        func column(_ name: String) throws -> Int {
            guard let i = names.firstIndex(of: name) else { throw TestPLYError("missing property \(name)") }
            return i
        }
        func gather(_ props: [String]) throws -> [Float] {
            let cols = try props.map(column)
            var out = [Float]()
            out.reserveCapacity(count * cols.count)
            for v in 0..<count { for c in cols { out.append(floats[v * stride + c]) } }
            return out
        }
        return GaussianSplat(
            positions: try gather(["x", "y", "z"]),
            shDC: try gather(["f_dc_0", "f_dc_1", "f_dc_2"]),
            opacities: try gather(["opacity"]),
            scales: try gather(["scale_0", "scale_1", "scale_2"]),
            rotations: try gather(["rot_0", "rot_1", "rot_2", "rot_3"]))
    }
}

enum PPM {
    /// Binary P6 image for eyeballing renders.
    static func write(rgb: [UInt8], width: Int, height: Int, to path: String) throws {
        var data = Data("P6\n\(width) \(height)\n255\n".utf8)
        data.append(contentsOf: rgb)
        try data.write(to: URL(fileURLWithPath: path))
    }
}

/// A scene that exercises the rasterizers: mostly small Gaussians near the origin, a few far out or large, some
/// below the opacity cut-off, unnormalised rotations.
func randomScene(seed: UInt64, count n: Int) throws -> PreparedSplat {
    var rng = SplitMix64(seed: seed)
    var positions: [Float] = [], colors: [Float] = [], opacities: [Float] = [], scales: [Float] = []
    var rotations: [Float] = []
    for i in 0..<n {
        let spread: Float = i % 50 == 0 ? 4 : 0.8
        positions += (0..<3).map { _ in rng.uniform(-spread, spread) }
        colors += (0..<3).map { _ in rng.uniform(-0.2, 1.2) }
        opacities.append(i % 9 == 0 ? rng.uniform(0, 0.006) : rng.uniform(0, 1))
        let upper: Float = i % 40 == 0 ? 0.6 : 0.2
        scales += (0..<3).map { _ in exp(rng.uniform(log(0.002), log(upper))) }
        rotations += (0..<4).map { _ in rng.uniform(-1, 1) }
    }
    return PreparedSplat(unnormalized: try ActivatedSplat(
        positions: positions, colors: colors, opacities: opacities, scales: scales, rotations: rotations))
}
