import Dispatch
import Foundation
import PLY
import TorchShim

/// `gen3d render-check`: one PLY through the CPU and the CUDA rasterizer (and optionally against reference images,
/// e.g. gsplat's from scripts/bench/gsplat_render.py), with timings and image differences.
public struct RenderCheck {
    /// What the CUDA render must meet against the CPU one (and gsplat's): at most 2/255 apart, PSNR >= 40 dB.
    public static let maxAbsTolerance: Float = 2.0 / 255.0
    public static let minimumPSNR = 40.0

    public var settings: RenderSettings
    public var cudaDevice: Int
    /// Timed CUDA renders (median reported), after 3 untimed ones.
    public var repetitions: Int

    public init(settings: RenderSettings = RenderSettings(), cudaDevice: Int = 0, repetitions: Int = 20) {
        self.settings = settings
        self.cudaDevice = cudaDevice
        self.repetitions = repetitions
    }

    public struct Report {
        public var cpuSeconds: Double
        /// Median / fastest of the synced CUDA renders to GPU images [C, 3, H, W] (splat already uploaded).
        public var cudaMedianSeconds: Double
        public var cudaMinSeconds: Double
        /// One CUDA render from host arrays to host `RenderedView`s (upload, draw, copy back).
        public var cudaEndToEndSeconds: Double
        public var cudaVsCPU: ImageComparison
        public var cudaVsReference: ImageComparison?
        public var cpuVsReference: ImageComparison?

        /// Every comparison within `maxAbsTolerance` and `minimumPSNR`.
        public var passed: Bool {
            [cudaVsCPU, cudaVsReference, cpuVsReference].compactMap { $0 }.allSatisfy(RenderCheck.meetsTolerance)
        }
    }

    public static func meetsTolerance(_ c: ImageComparison) -> Bool {
        c.maxAbsDifference <= maxAbsTolerance && c.psnr >= minimumPSNR
    }

    /// - Parameter reference: float images [C, H, W, 3] of the same views (a `.npy`), or nil.
    public func run(splat: GaussianSplat, reference: NPYArray? = nil) throws -> Report {
        if let reason = CUDARasterizer.unavailableReason(device: cudaDevice) {
            throw RasterizerError("render-check needs the CUDA rasterizer: \(reason)")
        }
        if let reference {
            let expected = [settings.viewCount, settings.height, settings.width, 3]
            guard reference.shape == expected else {
                throw RasterizerError("reference images have shape \(reference.shape), expected \(expected)")
            }
        }
        let cuda = CUDARasterizer(device: cudaDevice)

        var start = DispatchTime.now().uptimeNanoseconds
        let cpuViews = try CPURasterizer().render(splat: splat, settings: settings)
        let cpuSeconds = Self.seconds(since: start)

        start = DispatchTime.now().uptimeNanoseconds
        let cudaViews = try cuda.render(splat: splat, settings: settings)
        let endToEnd = Self.seconds(since: start)

        let cameras = try ValidatorCameras.make(settings)
        let prepared = try ValidatorNormalization.prepare(try ActivatedSplat(activating: splat),
                                                          targetExtent: settings.targetExtent)
        let uploaded = try SplatTensors(uploading: prepared, to: .cuda(cudaDevice))
        for _ in 0..<3 { _ = try cuda.renderImages(uploaded, cameras: cameras, background: settings.background) }
        try CUDA.synchronize(cudaDevice)
        var times: [Double] = []
        for _ in 0..<max(1, repetitions) {
            start = DispatchTime.now().uptimeNanoseconds
            _ = try cuda.renderImages(uploaded, cameras: cameras, background: settings.background)
            try CUDA.synchronize(cudaDevice)
            times.append(Self.seconds(since: start))
        }
        times.sort()

        let referenceValues = reference?.values
        return Report(
            cpuSeconds: cpuSeconds, cudaMedianSeconds: times[times.count / 2], cudaMinSeconds: times[0],
            cudaEndToEndSeconds: endToEnd,
            cudaVsCPU: try ImageComparison(views: cudaViews, cpuViews),
            cudaVsReference: try referenceValues.map { try ImageComparison(cudaViews.flatMap(\.rgb), $0) },
            cpuVsReference: try referenceValues.map { try ImageComparison(cpuViews.flatMap(\.rgb), $0) })
    }

    private static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
