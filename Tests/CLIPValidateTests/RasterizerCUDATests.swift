import CLIPValidate
import Foundation
import Splatting
import PLY
import TorchShim
import XCTest

/// The CUDA rasterizer against the CPU one. On a machine without the CUDA kernels or a CUDA device every test checks
/// instead that the CUDA path says why it cannot run (that is what it does there), and nothing silently falls back.
final class RasterizerCUDATests: XCTestCase {
    private let cudaAvailable = CUDARasterizer.isAvailable(device: 0)

    /// Runs `body`, which must fail with the CUDA rasterizer's "unavailable" error naming the reason.
    private func assertReportsUnavailable(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        let reason = CUDARasterizer.unavailableReason(device: 0) ?? "<available>"
        XCTAssertTrue(reason.contains("built without CUDA") || reason.contains("built without its CUDA kernels")
                      || reason.contains("no CUDA device"), "reason: \(reason)", file: file, line: line)
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual("\(error)", "the CUDA rasterizer is unavailable: \(reason)", file: file, line: line)
        }
    }

    func testHamburgerValidatorViewsMatchTheCPURasterizer() throws {
        let splat = try Fixtures.hamburger()
        let settings = RenderSettings()
        guard cudaAvailable else {
            assertReportsUnavailable { _ = try CUDARasterizer().render(splat: splat, settings: settings) }
            return
        }
        let cpu = try CPURasterizer().render(splat: splat, settings: settings)
        let cuda = try CUDARasterizer().render(splat: splat, settings: settings)
        XCTAssertEqual(cuda.count, 16)
        let comparison = try ImageComparison(views: cuda, cpu)
        print("hamburger, CUDA vs CPU: \(comparison)")
        XCTAssertLessThanOrEqual(comparison.maxAbsDifference, 2 / 255)
        XCTAssertGreaterThanOrEqual(comparison.psnr, 40)
        let alpha = try ImageComparison(cuda.flatMap(\.alpha), cpu.flatMap(\.alpha))
        XCTAssertLessThanOrEqual(alpha.maxAbsDifference, 2 / 255, "alpha")
    }

    /// Random scenes with culled, faint, huge and needle-thin Gaussians, several cameras of two image sizes (two
    /// launches, results back in camera order), an image size that is not a multiple of 16.
    func testRandomScenesWithMixedCamerasMatchTheCPURasterizer() throws {
        let splat = try randomScene(seed: 7, count: 3000)
        let wide = try ValidatorCameras.make(RenderSettings(width: 70, height: 45, thetasDegrees: [0, 215],
                                                            phisDegrees: [-15, -60], radius: 2))
        let square = try ValidatorCameras.make(RenderSettings(width: 33, height: 33, thetasDegrees: [100],
                                                              phisDegrees: [20], radius: 2))
        let cameras = [wide[0], square[0], wide[1]]
        let background = SIMD3<Float>(0.2, 0.4, 0.6)
        guard cudaAvailable else {
            assertReportsUnavailable { _ = try CUDARasterizer().render(splat: splat, cameras: cameras, background: background) }
            return
        }
        let cpu = try CPURasterizer().render(splat: splat, cameras: cameras, background: background)
        let cuda = try CUDARasterizer().render(splat: splat, cameras: cameras, background: background)
        XCTAssertEqual(cuda.map(\.width), [70, 33, 70])
        XCTAssertEqual(cuda.map(\.height), [45, 33, 45])
        for (index, (a, b)) in zip(cuda, cpu).enumerated() {
            let comparison = try ImageComparison(views: [a], [b])
            XCTAssertLessThanOrEqual(comparison.maxAbsDifference, 2 / 255, "view \(index): \(comparison)")
            XCTAssertGreaterThanOrEqual(comparison.psnr, 40, "view \(index)")
            XCTAssertGreaterThan(a.alpha.filter { $0 > 0.5 }.count, 100, "view \(index) is actually drawn")
        }
    }

    func testAnEmptySplatRendersTheBackground() throws {
        let empty = PreparedSplat(unnormalized: try ActivatedSplat(positions: [], colors: [], opacities: [], scales: [],
                                                                   rotations: []))
        let cameras = try ValidatorCameras.make(RenderSettings(width: 20, height: 10, thetasDegrees: [0]))
        let background = SIMD3<Float>(0.25, 0.5, 1)
        guard cudaAvailable else {
            assertReportsUnavailable { _ = try CUDARasterizer().render(splat: empty, cameras: cameras, background: background) }
            return
        }
        let view = try CUDARasterizer().render(splat: empty, cameras: cameras, background: background)[0]
        XCTAssertEqual(view.rgb, Array(repeating: [Float(0.25), 0.5, 1], count: 200).flatMap { $0 })
        XCTAssertEqual(view.alpha, Array(repeating: 0, count: 200))
    }

    /// The scorers' path: images stay on the GPU as [C, 3, H, W]; their validator bytes are the CPU render's.
    func testRenderImagesKeepsChannelFirstImagesOnTheGPU() throws {
        let splat = try Fixtures.hamburger()
        let settings = RenderSettings(width: 96, height: 80, thetasDegrees: [0, 120, 240])
        guard cudaAvailable else {
            assertReportsUnavailable { _ = try CUDARasterizer().renderImages(splat: splat, settings: settings) }
            return
        }
        let (rgb, alpha) = try CUDARasterizer().renderImages(splat: splat, settings: settings)
        XCTAssertEqual(rgb.shape, [3, 3, 80, 96])
        XCTAssertEqual(alpha.shape, [3, 80, 96])
        XCTAssertEqual(rgb.device, .cuda(0))
        let bytes = try CUDARasterizer.validatorBytes(rgb).permute([0, 2, 3, 1]).contiguous().toArray(UInt8.self)
        let cpu = try CPURasterizer().render(splat: splat, settings: settings).flatMap(\.rgb8)
        XCTAssertEqual(bytes.count, cpu.count)
        // Floats within 2/255 truncate to bytes at most 3 levels apart.
        let far = zip(bytes, cpu).filter { abs(Int($0) - Int($1)) > 3 }.count
        XCTAssertEqual(far, 0, "validator bytes more than 3 levels from the CPU render's")
    }

    /// The shim entry point itself: without kernels it names the build; with them it refuses host tensors.
    func testTheShimEntryPointExplainsWhatItCannotDo() throws {
        let one = try Tensor([Float](repeating: 0.5, count: 3), shape: [1, 3])
        let quat = try Tensor([Float(1), 0, 0, 0], shape: [1, 4])
        let view = try Tensor([Float(1), 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 5, 0, 0, 0, 1], shape: [1, 4, 4])
        let k = try Tensor([Float(100), 0, 16, 0, 100, 16, 0, 0, 1], shape: [1, 3, 3])
        let opacity = try Tensor([Float(0.5)], shape: [1])
        let background = try Tensor([Float(1), 1, 1], shape: [3])
        XCTAssertThrowsError(try GaussianRasterization.render(
            means: one, quats: quat, scales: one, opacities: opacity, colors: one, viewmats: view, intrinsics: k,
            width: 32, height: 32, near: 0.01, far: 100, background: background)) { error in
            let message = "\(error)"
            if GaussianRasterization.hasCUDAKernels {
                XCTAssertTrue(message.contains("must be CUDA tensors"), message)
            } else {
                XCTAssertTrue(message.contains("built without"), message)
                XCTAssertTrue(message.contains("CUDA"), message)
            }
        }
    }

    func testMakeRasterizerPicksCUDAOnlyWhereItRuns() {
        XCTAssertTrue(makeRasterizer(device: .cpu) is CPURasterizer)
        let picked = makeRasterizer(device: .cuda(0))
        if cudaAvailable {
            XCTAssertTrue(picked is CUDARasterizer)
        } else {
            XCTAssertTrue(picked is CPURasterizer)
        }
        XCTAssertNotNil(CUDARasterizer.unavailableReason(device: 9999), "a device index past the visible ones")
    }

    func testSplatTensorsRejectMismatchedShapes() throws {
        let means = try Tensor.zeros([4, 3])
        XCTAssertThrowsError(try SplatTensors(means: means, quats: try Tensor.zeros([4, 4]), scales: try Tensor.zeros([4, 3]),
                                              opacities: try Tensor.zeros([5]), colors: try Tensor.zeros([4, 3]))) { error in
            XCTAssertTrue("\(error)".contains("opacities"), "\(error)")
        }
        XCTAssertThrowsError(try SplatTensors(means: try Tensor.zeros([4]), quats: try Tensor.zeros([4, 4]),
                                              scales: try Tensor.zeros([4, 3]), opacities: try Tensor.zeros([4]),
                                              colors: try Tensor.zeros([4, 3])))
        let ok = try SplatTensors(means: means, quats: try Tensor.zeros([4, 4]), scales: try Tensor.zeros([4, 3]),
                                  opacities: try Tensor.zeros([4]), colors: try Tensor.zeros([4, 3]))
        XCTAssertEqual(ok.count, 4)
    }

    func testRenderCheckNeedsCUDAOrPassesOnTheHamburger() throws {
        let splat = try Fixtures.hamburger()
        let check = RenderCheck(settings: RenderSettings(width: 64, height: 64, thetasDegrees: [0, 90]), repetitions: 2)
        guard cudaAvailable else {
            XCTAssertThrowsError(try check.run(splat: splat)) { error in
                XCTAssertTrue("\(error)".hasPrefix("render-check needs the CUDA rasterizer: "), "\(error)")
            }
            return
        }
        let report = try check.run(splat: splat)
        XCTAssertTrue(report.passed, "\(report.cudaVsCPU)")
        XCTAssertGreaterThan(report.cudaMedianSeconds, 0)
    }
}

final class ImageComparisonTests: XCTestCase {
    func testIdenticalImagesHaveInfinitePSNR() throws {
        let c = try ImageComparison([0.1, 0.5, 0.9], [0.1, 0.5, 0.9])
        XCTAssertEqual(c.maxAbsDifference, 0)
        XCTAssertEqual(c.psnr, .infinity)
        XCTAssertEqual(c.differingBytes, 0)
    }

    func testDifferencesAreMeasuredOnClippedColours() throws {
        // 1.7 and 1.0 both clip to 1; -0.3 clips to 0; one value differs by 0.1.
        let c = try ImageComparison([1.7, -0.3, 0.5, 0.2], [1.0, 0.0, 0.5, 0.3])
        XCTAssertEqual(c.maxAbsDifference, 0.1, accuracy: 1e-6)
        XCTAssertEqual(c.meanSquaredError, 0.01 / 4, accuracy: 1e-8)
        XCTAssertEqual(c.psnr, 10 * log10(400), accuracy: 1e-4)
        XCTAssertEqual(c.differingBytes, 1)
    }

    func testMismatchedInputsAreRejected() throws {
        XCTAssertThrowsError(try ImageComparison([0, 1], [0]))
        XCTAssertThrowsError(try ImageComparison([], []))
        let a = try RenderedView(width: 1, height: 1, rgb: [0, 0, 0], alpha: [0])
        let b = try RenderedView(width: 1, height: 2, rgb: [0, 0, 0, 0, 0, 0], alpha: [0, 0])
        XCTAssertThrowsError(try ImageComparison(views: [a], [b]))
        XCTAssertThrowsError(try ImageComparison(views: [a, a], [a]))
    }
}

final class NPYArrayTests: XCTestCase {
    private func npy(descr: String, shape: String, body: [UInt8], version: UInt8 = 1) -> Data {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        let prefix = version == 1 ? 10 : 12
        while (prefix + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [version, 0])
        let length = header.utf8.count
        if version == 1 {
            data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        } else {
            data.append(contentsOf: (0..<4).map { UInt8((length >> (8 * $0)) & 0xFF) })
        }
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: body)
        return data
    }

    func testReadsFloat32AndUInt8Arrays() throws {
        let floats: [Float] = [0, 0.25, -1.5, 3, 1e-3, 7]
        let body = floats.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let a = try NPYArray(data: npy(descr: "<f4", shape: "(1, 2, 3)", body: body))
        XCTAssertEqual(a.shape, [1, 2, 3])
        XCTAssertEqual(a.values, floats)
        let b = try NPYArray(data: npy(descr: "|u1", shape: "(3,)", body: [0, 51, 255], version: 2))
        XCTAssertEqual(b.shape, [3])
        XCTAssertEqual(b.values, [0, 0.2, 1])
    }

    func testRejectsWhatItCannotRead() {
        XCTAssertThrowsError(try NPYArray(data: Data("not numpy at all".utf8)))
        XCTAssertThrowsError(try NPYArray(data: npy(descr: "<i8", shape: "(1,)", body: Array(repeating: 0, count: 8)))) {
            XCTAssertTrue("\($0)".contains("<i8"), "\($0)")
        }
        XCTAssertThrowsError(try NPYArray(data: npy(descr: "<f4", shape: "(4,)", body: [0, 0, 0, 0]))) {
            XCTAssertTrue("\($0)".contains("needs 16"), "\($0)")
        }
    }
}
