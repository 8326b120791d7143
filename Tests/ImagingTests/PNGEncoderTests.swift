import Foundation
import XCTest
@testable import Imaging

final class PNGEncoderTests: XCTestCase {
    func testRoundTripEveryChannelCountAndCompressionLevel() throws {
        for channels in [1, 3, 4] {
            let noise = try randomImage(width: 37, height: 23, channels: channels, seed: UInt64(channels))
            let gradient = try Image(width: 64, height: 16, channels: channels,
                                     pixels: (0 ..< 64 * 16 * channels).map { UInt8(truncatingIfNeeded: $0 / 7) })
            for image in [noise, gradient] {
                var sizes: [Int] = []
                for level in [0, 1, 6, 9] {
                    let png = try PNGEncoder.encode(image, compressionLevel: level)
                    XCTAssertEqual(ImageFormat.sniff(png), .png)
                    XCTAssertEqual(try ImageDecoder.decode(png), image, "channels \(channels) level \(level)")
                    sizes.append(png.count)
                }
                if image == gradient {
                    XCTAssertGreaterThan(sizes[0], sizes[3], "level 0 stores, level 9 compresses")
                }
            }
        }
    }

    func testCompressibleImageShrinks() throws {
        let flat = try Image(width: 256, height: 256, filledWith: [10, 200, 30])
        let png = try PNGEncoder.encode(flat, compressionLevel: 9)
        XCTAssertLessThan(png.count, 2_000)
        XCTAssertEqual(try ImageDecoder.decode(png), flat)
    }

    func testInvalidCompressionLevel() throws {
        let image = try Image(width: 1, height: 1, filledWith: [0])
        for level in [-1, 10] {
            XCTAssertThrowsError(try PNGEncoder.encode(image, compressionLevel: level)) { error in
                guard case .invalidArgument? = error as? ImagingError else { return XCTFail("got \(error)") }
            }
        }
    }
}
