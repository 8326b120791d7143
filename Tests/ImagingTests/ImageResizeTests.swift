import Foundation
import XCTest
@testable import Imaging

/// Resize is compared with Pillow byte for byte (tolerance 0 LSB).
final class ImageResizeTests: XCTestCase {
    private func filter(named name: String) throws -> ResizeFilter {
        switch name {
        case "box": return .box
        case "bilinear": return .bilinear
        case "bicubic": return .bicubic
        case "lanczos": return .lanczos
        default: throw ImagingError.invalidArgument("unknown filter \(name)")
        }
    }

    func testMatchesPillow13ForEveryFilterModeAndShape() throws {
        let manifest = try Resources.manifest()
        XCTAssertTrue(manifest.pillow.hasPrefix("13."), "references made with Pillow \(manifest.pillow)")
        XCTAssertEqual(manifest.resize.count, 60)
        for item in manifest.resize {
            let source = try ImageDecoder.decode(Resources.data(item.source))
            let expected = try ImageDecoder.decode(Resources.data(item.file))
            let resized = try source.resized(width: item.width, height: item.height, filter: filter(named: item.filter))
            XCTAssertEqual([resized.width, resized.height, resized.channels],
                           [expected.width, expected.height, expected.channels], item.file)
            let difference = byteDifference(resized.pixels, expected.pixels)
            XCTAssertEqual(difference.max, 0, "\(item.file): \(difference.count) bytes differ")
        }
    }

    func testPassOrderMattersWhereThePillowVersionsDiffer() throws {
        // 40x30 -> 50x20 grows the width and shrinks the height: Pillow 13 resamples vertically first.
        let source = try ImageDecoder.decode(Resources.data("resize_src_RGB.png"))
        let pillow13 = try source.resized(width: 50, height: 20, filter: .lanczos, passOrder: .pillow13)
        let pillow12 = try source.resized(width: 50, height: 20, filter: .lanczos, passOrder: .horizontalFirst)
        XCTAssertNotEqual(pillow13, pillow12)
        XCTAssertEqual(pillow13, try ImageDecoder.decode(Resources.data("resize_RGB_lanczos_50x20.png")))
        // Uniform downscaling (TRELLIS's square crop -> 518) uses the same order in both versions.
        XCTAssertEqual(try source.resized(width: 20, height: 15, filter: .lanczos, passOrder: .pillow13),
                       try source.resized(width: 20, height: 15, filter: .lanczos, passOrder: .horizontalFirst))
    }

    func testMatchesPillow12ReferencesInTheBiRefNetFixture() throws {
        // Made with Pillow 12.3.0 (horizontal pass first).
        let tensors = try SafetensorsU8(url: Fixtures.url("birefnet/tiny_e2e.safetensors"))
        let image = try tensors.tensor("image_rgb_uint8_hwc")
        let source = try Image(width: 300, height: 200, channels: 3, pixels: image.bytes)
        let bilinear = try source.resized(width: 256, height: 256, filter: .bilinear, passOrder: .horizontalFirst)
        XCTAssertEqual(bilinear.pixels, try tensors.tensor("resized_rgb_uint8_hwc").bytes)

        // 256x256 -> 300x200 bicubic on gray: width grows, height shrinks, so the pass order decides.
        let prediction = try Image(width: 256, height: 256, channels: 1, pixels: tensors.tensor("pred_uint8_model_size").bytes)
        let card = try prediction.resized(width: 300, height: 200, filter: .bicubic, passOrder: .horizontalFirst)
        let expected = try tensors.tensor("alpha_hf_card_uint8").bytes
        let difference = byteDifference(card.pixels, expected)
        XCTAssertEqual(difference.max, 0, "\(difference.count) bytes differ")
    }

    func testIdentityAndInvalidSizes() throws {
        let image = try randomImage(width: 9, height: 7, channels: 4, seed: 3)
        XCTAssertEqual(try image.resized(width: 9, height: 7, filter: .lanczos), image)
        XCTAssertThrowsError(try image.resized(width: 0, height: 7, filter: .box))
        XCTAssertThrowsError(try image.resized(width: 1 << 21, height: 1, filter: .box))
    }

    func testBoxDownscaleByIntegerFactorIsTheBlockMean() throws {
        let image = try randomImage(width: 8, height: 6, channels: 1, seed: 9)
        let reduced = try image.resized(width: 4, height: 3, filter: .box)
        for y in 0..<3 {
            for x in 0..<4 {
                let block = try [image.pixel(x: 2 * x, y: 2 * y), image.pixel(x: 2 * x + 1, y: 2 * y),
                                 image.pixel(x: 2 * x, y: 2 * y + 1), image.pixel(x: 2 * x + 1, y: 2 * y + 1)]
                let mean = Double(block.map { Int($0.first!) }.reduce(0, +)) / 4
                XCTAssertEqual(Double(try reduced.pixel(x: x, y: y).first!), mean, accuracy: 1.0)
            }
        }
    }
}
