import Foundation
import PLY
import TorchShim

/// A splat's Gaussians as tensors on one device, as the CUDA rasterizer takes them: upload once, render many times
/// (or wrap tensors a GPU stage already holds).
public struct SplatTensors {
    /// [N, 3] positions, [N, 4] unit quaternions (w, x, y, z), [N, 3] linear scales, [N] opacities, [N, 3] RGB.
    public let means: Tensor
    public let quats: Tensor
    public let scales: Tensor
    public let opacities: Tensor
    public let colors: Tensor

    public var count: Int { means.size(0) }
    public var device: Device { means.device }

    public init(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor) throws {
        let n = means.ndim == 2 ? means.size(0) : -1
        for (name, tensor, shape) in [("means", means, [n, 3]), ("quats", quats, [n, 4]), ("scales", scales, [n, 3]),
                                      ("opacities", opacities, [n]), ("colors", colors, [n, 3])]
        where tensor.shape != shape || n < 0 {
            throw RasterizerError("splat tensor \(name) has shape \(tensor.shape), expected \(shape.map { $0 < 0 ? "N" : "\($0)" })")
        }
        for (name, tensor) in [("quats", quats), ("scales", scales), ("opacities", opacities), ("colors", colors)]
        where tensor.device != means.device {
            throw RasterizerError("splat tensor \(name) is on \(tensor.device), means on \(means.device)")
        }
        self.means = means
        self.quats = quats
        self.scales = scales
        self.opacities = opacities
        self.colors = colors
    }

    /// Copies prepared (activated, normalised) Gaussians to `device` as float32.
    public init(uploading splat: PreparedSplat, to device: Device) throws {
        let g = splat.gaussians
        let n = g.count
        try self.init(means: try Tensor(g.positions, shape: [n, 3]).to(device),
                      quats: try Tensor(g.rotations, shape: [n, 4]).to(device),
                      scales: try Tensor(g.scales, shape: [n, 3]).to(device),
                      opacities: try Tensor(g.opacities, shape: [n]).to(device),
                      colors: try Tensor(g.colors, shape: [n, 3]).to(device))
    }
}

/// The validator's renderer on the GPU: the shim's CUDA kernels, which follow gsplat 1.5.3 classic mode exactly as
/// `CPURasterizer` does (same projection, tiles, depth order and compositing rules; float rounding differs in the
/// last bits, e.g. the GPU's fast exp). All cameras of one image size and clip range are drawn in one launch
/// sequence.
public struct CUDARasterizer: Rasterizer {
    /// CUDA device index.
    public let device: Int

    public init(device: Int = 0) {
        self.device = device
    }

    /// Why this rasterizer cannot run here (shim without kernels, no CUDA device), or nil when it can.
    public static func unavailableReason(device: Int = 0) -> String? {
        if !GaussianRasterization.hasCUDAKernels {
            return CUDA.shimHasCUDA
                ? "libtorchshim was built without its CUDA kernels (no nvcc when scripts/build-shim.sh ran)"
                : "libtorchshim was built without CUDA"
        }
        let visible = CUDA.isAvailable ? CUDA.deviceCount : 0
        if visible == 0 { return "no CUDA device" }
        if device < 0 || device >= visible { return "no CUDA device \(device) (\(visible) visible)" }
        return nil
    }

    public static func isAvailable(device: Int = 0) -> Bool { unavailableReason(device: device) == nil }

    private func checkAvailable() throws {
        if let reason = Self.unavailableReason(device: device) {
            throw RasterizerError("the CUDA rasterizer is unavailable: \(reason)")
        }
    }

    public func render(splat: PreparedSplat, cameras: [Camera], background: SIMD3<Float>) throws -> [RenderedView] {
        try CameraChecks.validate(cameras, background: background)
        if cameras.isEmpty { return [] }
        try checkAvailable()
        let gaussians = try SplatTensors(uploading: splat, to: .cuda(device))
        var views = [RenderedView?](repeating: nil, count: cameras.count)
        for group in CameraGroup.split(cameras) {
            let (rgb, alpha) = try renderHWC(gaussians, cameras: group.cameras, background: background)
            let colours = try rgb.floats(), opacities = try alpha.floats()
            let pixels = group.width * group.height
            for (k, index) in group.indices.enumerated() {
                views[index] = try RenderedView(
                    width: group.width, height: group.height,
                    rgb: Array(colours[(3 * k * pixels)..<(3 * (k + 1) * pixels)]),
                    alpha: Array(opacities[(k * pixels)..<((k + 1) * pixels)]))
            }
        }
        return views.map { $0! }
    }

    /// The scorers' entry point: colour [C, 3, H, W] float32 (background blended, not clipped) and alpha [C, H, W],
    /// left on the GPU. Every camera must share one image size and clip range.
    public func renderImages(_ splat: SplatTensors, cameras: [Camera], background: SIMD3<Float>) throws
        -> (rgb: Tensor, alpha: Tensor) {
        try CameraChecks.validate(cameras, background: background)
        guard let first = cameras.first else { throw RasterizerError("no cameras to render") }
        guard cameras.allSatisfy({ CameraGroup.Key($0) == CameraGroup.Key(first) }) else {
            throw RasterizerError("renderImages draws cameras of one image size and clip range in one launch; "
                                  + "these differ (use render(splat:cameras:background:) for mixed cameras)")
        }
        try checkAvailable()
        guard splat.device == .cuda(device) else {
            throw RasterizerError("the splat tensors are on \(splat.device), this rasterizer draws on cuda:\(device)")
        }
        let (rgb, alpha) = try renderHWC(splat, cameras: cameras, background: background)
        return (try rgb.permute([0, 3, 1, 2]).contiguous(), alpha)
    }

    /// The validator's whole path from a stored splat to GPU images [C, 3, H, W]: activate, normalise, orbit cameras.
    public func renderImages(splat: GaussianSplat, settings: RenderSettings) throws -> (rgb: Tensor, alpha: Tensor) {
        let cameras = try ValidatorCameras.make(settings)
        let prepared = try ValidatorNormalization.prepare(try ActivatedSplat(activating: splat),
                                                          targetExtent: settings.targetExtent)
        try checkAvailable()
        return try renderImages(try SplatTensors(uploading: prepared, to: .cuda(device)), cameras: cameras,
                                background: settings.background)
    }

    /// The validator's 8-bit images from float renders: `(img.clip(0, 1) * 255).to(torch.uint8)` (truncation).
    public static func validatorBytes(_ rgb: Tensor) throws -> Tensor {
        try (rgb.clamp(min: 0, max: 1) * 255).to(.uint8)
    }

    /// One launch for cameras of one size and clip range: colour [C, H, W, 3] and alpha [C, H, W].
    private func renderHWC(_ splat: SplatTensors, cameras: [Camera], background: SIMD3<Float>) throws
        -> (rgb: Tensor, alpha: Tensor) {
        let first = cameras[0]
        let gpu = Device.cuda(device)
        let viewmats = try Tensor(cameras.flatMap(\.viewMatrix), shape: [cameras.count, 4, 4]).to(gpu)
        let intrinsics = try Tensor(cameras.flatMap(\.intrinsics), shape: [cameras.count, 3, 3]).to(gpu)
        let backgroundTensor = try Tensor([background.x, background.y, background.z], shape: [3]).to(gpu)
        return try GaussianRasterization.render(
            means: splat.means, quats: splat.quats, scales: splat.scales, opacities: splat.opacities,
            colors: splat.colors, viewmats: viewmats, intrinsics: intrinsics, width: first.width,
            height: first.height, near: Double(first.near), far: Double(first.far), background: backgroundTensor)
    }
}

/// The rasterizer for `device`: CUDA when it is a CUDA device and the CUDA rasterizer can run there, else the CPU.
public func makeRasterizer(device: Device) -> any Rasterizer {
    if case .cuda(let index) = device, CUDARasterizer.isAvailable(device: index) {
        return CUDARasterizer(device: index)
    }
    return CPURasterizer()
}

/// Input checks shared by the GPU paths (the same rules as `CPURasterizer`'s).
enum CameraChecks {
    static func validate(_ cameras: [Camera], background: SIMD3<Float>) throws {
        guard background.isFiniteVector else { throw RasterizerError("background colour is not finite") }
        for (i, camera) in cameras.enumerated() {
            guard camera.width > 0, camera.height > 0, camera.width <= 16384, camera.height <= 16384 else {
                throw RasterizerError("camera \(i) has an unusable image size \(camera.width)x\(camera.height)")
            }
            guard [camera.fx, camera.fy, camera.cx, camera.cy, camera.near].allSatisfy(\.isFinite),
                  camera.fx > 0, camera.fy > 0, camera.near > 0, camera.far > camera.near else {
                throw RasterizerError("camera \(i) has invalid intrinsics or clip planes")
            }
        }
    }
}

/// Cameras that can share one kernel launch (same image size and clip range), with their places in the input.
struct CameraGroup {
    struct Key: Hashable {
        let width: Int
        let height: Int
        let near: Float
        let far: Float
        init(_ camera: Camera) {
            width = camera.width
            height = camera.height
            near = camera.near
            far = camera.far
        }
    }

    var width: Int
    var height: Int
    var indices: [Int]
    var cameras: [Camera]

    /// Groups in order of first appearance.
    static func split(_ cameras: [Camera]) -> [CameraGroup] {
        var groups: [CameraGroup] = []
        var slot: [Key: Int] = [:]
        for (index, camera) in cameras.enumerated() {
            let key = Key(camera)
            if let g = slot[key] {
                groups[g].indices.append(index)
                groups[g].cameras.append(camera)
            } else {
                slot[key] = groups.count
                groups.append(CameraGroup(width: camera.width, height: camera.height, indices: [index], cameras: [camera]))
            }
        }
        return groups
    }
}
