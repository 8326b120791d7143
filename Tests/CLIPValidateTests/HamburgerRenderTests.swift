import CLIPValidate
import Foundation
import Splatting
import PLY
import XCTest

/// The real sample splat (legacy orientation, +Y up) through the validator's whole render path.
final class HamburgerRenderTests: XCTestCase {
    func testTheSamplePassesTheValidatorChecks() throws {
        let result = SplatChecks.run(try ActivatedSplat(activating: try Fixtures.hamburger()))
        XCTAssertTrue(result.passed, "\(result.failures)")
    }

    /// Every view: the object is whole, roughly centred, and covers a sensible share of the frame; the
    /// last view repeats the first; the contact sheet goes to /tmp for eyeballing.
    func testValidatorViewsAreCentredAndSensiblyCovered() throws {
        let splat = try Fixtures.hamburger()
        let wallStart = Date(), cpuStart = processCPUSeconds()
        let views = try CPURasterizer().render(splat: splat, settings: RenderSettings())
        print(String(format: "hamburger, 16 views at 518x518: %.3f s wall, %.3f s CPU",
                     Date().timeIntervalSince(wallStart), processCPUSeconds() - cpuStart))
        XCTAssertEqual(views.count, 16)
        for (index, view) in views.enumerated() {
            let box = try XCTUnwrap(ObjectBox(view), "view \(index) is empty")
            XCTAssertGreaterThan(box.minX, 0, "view \(index) touches the left edge")
            XCTAssertGreaterThan(box.minY, 0, "view \(index) touches the top edge")
            XCTAssertLessThan(box.maxX, 517, "view \(index) touches the right edge")
            XCTAssertLessThan(box.maxY, 517, "view \(index) touches the bottom edge")
            XCTAssertEqual(box.centre.x, 259, accuracy: 0.08 * 518, "view \(index) horizontal centre")
            XCTAssertEqual(box.centre.y, 259, accuracy: 0.08 * 518, "view \(index) vertical centre")
            // The largest side is normalised to 1.5 of the 2.28 units the frame spans at the orbit radius.
            XCTAssertEqual(Double(box.width) / 518, 0.66, accuracy: 0.12, "view \(index) width")
            XCTAssertEqual(Double(box.height) / 518, 0.66, accuracy: 0.12, "view \(index) height")
            XCTAssertGreaterThan(box.coverage, 0.25, "view \(index) coverage")
            XCTAssertLessThan(box.coverage, 0.5, "view \(index) coverage")
        }
        let first = views[0].rgb8, last = views[15].rgb8
        let differing = zip(first, last).filter { abs(Int($0) - Int($1)) > 1 }.count
        XCTAssertLessThan(differing, 10, "view 15 repeats view 0")
        let sheet = try ContactSheet(views: views, columns: 4, gap: 4)
        try PPM.write(rgb: sheet.rgb, width: sheet.width, height: sheet.height, to: "/tmp/hamburger_contact_sheet.ppm")
    }

    /// The top bun (highest world Y in the file) must show at the top of every legacy view and at the bottom
    /// of every -Y-up view: the topmost fifth of the Gaussians is painted red, the bottommost fifth blue.
    func testOrientationPutsTheTopBunWhereItBelongs() throws {
        var splat = try Fixtures.hamburger()
        let ys = stride(from: 1, to: splat.positions.count, by: 3).map { splat.positions[$0] }.sorted()
        let low = ys[ys.count / 5], high = ys[ys.count * 4 / 5]
        let c0 = ActivatedSplat.shC0
        for i in 0..<splat.count {
            let y = splat.positions[3 * i + 1]
            let rgb: [Float]? = y >= high ? [1, 0, 0] : (y <= low ? [0, 0, 1] : nil)
            if let rgb { for k in 0..<3 { splat.shDC[3 * i + k] = (rgb[k] - 0.5) / c0 } }
        }
        let settings = RenderSettings(width: 160, height: 160, thetasDegrees: RenderSettings.linspace(0, 360, count: 8))
        for orientation in SplatOrientation.allCases {
            var oriented = settings
            oriented.orientation = orientation
            for (index, view) in try CPURasterizer().render(splat: splat, settings: oriented).enumerated() {
                let box = try XCTUnwrap(ObjectBox(view))
                let red = try XCTUnwrap(centroidRow(view) { $0.x > 0.6 && $0.y < 0.3 && $0.z < 0.3 })
                let blue = try XCTUnwrap(centroidRow(view) { $0.z > 0.6 && $0.x < 0.3 && $0.y < 0.3 })
                let separation = (blue - red) / Double(box.height)
                if orientation == .yUp {
                    XCTAssertGreaterThan(separation, 0.4, "\(orientation) view \(index): top bun above bottom")
                    XCTAssertLessThan(red, box.centre.y, "\(orientation) view \(index): top bun in the upper half")
                } else {
                    XCTAssertLessThan(separation, -0.4, "\(orientation) view \(index): top bun below bottom")
                    XCTAssertGreaterThan(red, box.centre.y, "\(orientation) view \(index): top bun in the lower half")
                }
            }
        }
    }

    private func centroidRow(_ view: RenderedView, where match: (SIMD3<Float>) -> Bool) -> Double? {
        var sum = 0.0, count = 0
        for y in 0..<view.height {
            for x in 0..<view.width {
                let p = 3 * (y * view.width + x)
                if match(SIMD3(view.rgb[p], view.rgb[p + 1], view.rgb[p + 2])) {
                    sum += Double(y)
                    count += 1
                }
            }
        }
        return count > 20 ? sum / Double(count) : nil
    }
}

/// Bounding box and share of the pixels where the object is mostly opaque (alpha > 0.5).
struct ObjectBox {
    var minX = Int.max, maxX = Int.min, minY = Int.max, maxY = Int.min
    var coverage = 0.0

    init?(_ view: RenderedView) {
        var count = 0
        for y in 0..<view.height {
            for x in 0..<view.width where view.alpha[y * view.width + x] > 0.5 {
                count += 1
                minX = min(minX, x)
                maxX = max(maxX, x)
                minY = min(minY, y)
                maxY = max(maxY, y)
            }
        }
        guard count > 0 else { return nil }
        coverage = Double(count) / Double(view.width * view.height)
    }

    var width: Int { maxX - minX + 1 }
    var height: Int { maxY - minY + 1 }
    var centre: (x: Double, y: Double) { (Double(minX + maxX) / 2, Double(minY + maxY) / 2) }
}

func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}
