import CLIPValidate
import Foundation
import Splatting
import XCTest

/// `gen3d render`'s option handling and a real CPU render of the sample splat to PNG files.
final class RenderJobTests: XCTestCase {
    private let ply = "/unused.ply"

    func testDefaultsAreTheValidatorsScoringSetup() throws {
        let job = try RenderJob(input: ply)
        XCTAssertEqual(job.settings, RenderSettings())
        XCTAssertEqual(job.settings.viewCount, 16)
        XCTAssertEqual(job.device, .automatic)
        XCTAssertEqual(job.outputPaths, ["sheet.png"])
        XCTAssertEqual(job.sheetColumns, 4)
    }

    func testOrbitOptions() throws {
        let job = try RenderJob(input: ply, output: "/tmp/x/out.png", views: 3, size: 256, phi: "10", radius: 3,
                                bbox: 1.2, fov: 40, background: "0,0.5,1", up: "-y", device: "cuda:1", each: true)
        XCTAssertEqual(job.settings.thetasDegrees, [0, 180, 360])
        XCTAssertEqual(job.settings.phisDegrees, [10, 10, 10])
        XCTAssertEqual(job.settings.width, 256)
        XCTAssertEqual(job.settings.height, 256)
        XCTAssertEqual(job.settings.radius, 3)
        XCTAssertEqual(job.settings.targetExtent, 1.2)
        XCTAssertEqual(job.settings.fovYDegrees, 40)
        XCTAssertEqual(job.settings.background, SIMD3(0, 0.5, 1))
        XCTAssertEqual(job.settings.orientation, .yDown)
        XCTAssertEqual(job.device, .cuda(1))
        XCTAssertEqual(job.outputPaths, ["/tmp/x/out_00.png", "/tmp/x/out_01.png", "/tmp/x/out_02.png"])

        let explicit = try RenderJob(input: ply, theta: "0, 45.5,-90", phi: "-15,0,30", up: "y", device: "cpu")
        XCTAssertEqual(explicit.settings.thetasDegrees, [0, 45.5, -90])
        XCTAssertEqual(explicit.settings.phisDegrees, [-15, 0, 30])
        XCTAssertEqual(explicit.settings.orientation, .yUp)
        XCTAssertEqual(explicit.device, .cpu)
        XCTAssertEqual(explicit.sheetColumns, 2)
        XCTAssertEqual(try RenderJob(input: ply, views: 1).settings.thetasDegrees, [0])
        XCTAssertEqual(try RenderJob(input: ply, theta: "30", each: true).outputPaths, ["sheet_00.png"])
        XCTAssertEqual(try RenderJob(input: ply, output: "grid", views: 120, each: true).outputPaths.last, "grid_119.png")
        XCTAssertEqual(try RenderJob(input: ply, output: "a.b/c.jpeg", views: 1, each: true).outputPaths, ["a.b/c_00.jpeg"])
        XCTAssertEqual(try RenderJob(input: ply, output: "./.hidden", views: 1, each: true).outputPaths, ["./.hidden_00.png"])
    }

    func testBadOptionsAreRejectedWithTheirName() {
        func fails(_ expected: String, file: StaticString = #filePath, line: UInt = #line, _ make: () throws -> RenderJob) {
            XCTAssertThrowsError(try make(), file: file, line: line) { error in
                XCTAssertTrue(error is RenderJobError, "\(type(of: error))", file: file, line: line)
                XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
            }
        }
        fails("--views") { try RenderJob(input: ply, views: 0) }
        fails("--size") { try RenderJob(input: ply, size: 0) }
        fails("--size") { try RenderJob(input: ply, size: 20000) }
        fails("'abc'") { try RenderJob(input: ply, theta: "0,abc") }
        fails("--theta") { try RenderJob(input: ply, theta: "0,,90") }
        fails("--views 4 disagrees") { try RenderJob(input: ply, views: 4, theta: "0,90") }
        fails("--phi lists 2") { try RenderJob(input: ply, views: 3, phi: "1,2") }
        fails("three components") { try RenderJob(input: ply, background: "1,1") }
        fails("[0, 1]") { try RenderJob(input: ply, background: "255,255,255") }
        fails("--up") { try RenderJob(input: ply, up: "z") }
        fails("unknown device") { try RenderJob(input: ply, device: "tpu") }
        fails("radius") { try RenderJob(input: ply, radius: -1) }
        fails("field of view") { try RenderJob(input: ply, fov: 180) }
        fails("bounding-box") { try RenderJob(input: ply, bbox: 0) }
        fails("no input") { try RenderJob(input: "") }
    }

    func testRendersTheHamburgerToAContactSheetAndToOnePNGPerView() throws {
        let plyPath = try Fixtures.directory().appendingPathComponent("ply/hamburger.ply").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("render-job-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let sheet = try RenderJob(input: plyPath, output: dir.appendingPathComponent("sheet.png").path, views: 4,
                                  size: 64, device: "cpu").run()
        XCTAssertEqual(sheet.viewCount, 4)
        XCTAssertEqual(sheet.gaussians, 52_709)
        XCTAssertEqual(sheet.rasterizer, "cpu")
        XCTAssertTrue(sheet.checks.passed)
        XCTAssertEqual(try pngSize(sheet.written[0]), [2 * 64 + 4, 2 * 64 + 4])

        let each = try RenderJob(input: plyPath, output: dir.appendingPathComponent("view.png").path, size: 48,
                                 theta: "0,90,180", device: "cpu", each: true).run()
        XCTAssertEqual(each.written.map { URL(fileURLWithPath: $0).lastPathComponent },
                       ["view_00.png", "view_01.png", "view_02.png"])
        for path in each.written { XCTAssertEqual(try pngSize(path), [48, 48]) }

        let single = try RenderJob(input: plyPath, output: dir.appendingPathComponent("one.png").path, size: 40,
                                   theta: "30", device: "cpu").run()
        XCTAssertEqual(try pngSize(single.written[0]), [40, 40])
    }

    func testAMissingFileOrUnusableCUDADeviceIsAnError() throws {
        XCTAssertThrowsError(try RenderJob(input: "/nonexistent/x.ply", device: "cpu").run()) { error in
            XCTAssertTrue("\(error)".contains("cannot read /nonexistent/x.ply"), "\(error)")
        }
        let job = try RenderJob(input: ply, device: "cuda:9999")
        XCTAssertThrowsError(try job.rasterizer()) { error in
            XCTAssertTrue("\(error)".contains("cannot render on cuda:9999"), "\(error)")
        }
    }

    /// Width and height from a PNG's IHDR chunk (after checking the signature).
    private func pngSize(_ path: String) throws -> [Int] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(String(decoding: bytes[12..<16], as: UTF8.self), "IHDR")
        func be32(_ at: Int) -> Int { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return [be32(16), be32(20)]
    }
}
