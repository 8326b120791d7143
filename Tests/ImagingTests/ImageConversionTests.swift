import Foundation
import XCTest
@testable import Imaging

final class ImageConversionTests: XCTestCase {
    private let rgba = try! Image(width: 2, height: 2, channels: 4, pixels: [
        200, 100, 50, 255, /**/ 200, 100, 50, 128,
        200, 100, 50, 0, /**/ 10, 20, 30, 1,
    ])

    func testInitialiserValidatesShape() {
        XCTAssertThrowsError(try Image(width: 2, height: 2, channels: 3, pixels: [0, 0, 0]))
        XCTAssertThrowsError(try Image(width: 0, height: 2, channels: 3, pixels: []))
        XCTAssertThrowsError(try Image(width: 1, height: 1, channels: 2, pixels: [0, 0]))
        XCTAssertThrowsError(try Image(width: 1, height: 1, filledWith: [1, 2]))
        XCTAssertThrowsError(try Image(width: Int.max / 2, height: 3, filledWith: [1]))
        XCTAssertThrowsError(try rgba.pixel(x: 2, y: 0))
        XCTAssertEqual(try rgba.pixel(x: 1, y: 1), [10, 20, 30, 1])
    }

    func testRGBAndRGBAConversions() throws {
        let gray = try Image(width: 2, height: 1, channels: 1, pixels: [7, 250])
        XCTAssertEqual(gray.toRGB().pixels, [7, 7, 7, 250, 250, 250])
        XCTAssertEqual(gray.toRGBA().pixels, [7, 7, 7, 255, 250, 250, 250, 255])
        XCTAssertEqual(rgba.toRGB().pixels, [200, 100, 50, 200, 100, 50, 200, 100, 50, 10, 20, 30])
        XCTAssertEqual(rgba.toRGB().toRGBA().pixels.count, 16)
        XCTAssertEqual(rgba.toRGBA(), rgba)
        XCTAssertFalse(gray.hasAlpha)
        XCTAssertTrue(rgba.hasTransparency)
        XCTAssertFalse(try Image(width: 3, height: 3, filledWith: [1, 2, 3, 255]).hasTransparency)
    }

    func testPremultiplyRoundsLikePillow() {
        // round(c * a / 255): 200*128/255 = 100.39 -> 100, 100*128/255 = 50.2 -> 50, 50*128/255 = 25.1 -> 25.
        XCTAssertEqual(rgba.premultipliedAlpha().pixels, [200, 100, 50, 255, 100, 50, 25, 128, 0, 0, 0, 0, 0, 0, 0, 1])
        // Pillow's inverse truncates: 100*255/128 = 199.2 -> 199.
        XCTAssertEqual(rgba.premultipliedAlpha().unpremultipliedAlpha().pixels,
                       [200, 100, 50, 255, 199, 99, 49, 128, 0, 0, 0, 0, 0, 0, 0, 1])
    }

    func testCompositeOnBackground() {
        let onWhite = rgba.composited(on: .white)
        XCTAssertEqual(onWhite.channels, 3)
        // 128/255 blend: (200*128 + 255*127)/255 = 227.4 -> 227; (100*128+255*127)/255 = 177.2 -> 177; 152.1 -> 152.
        XCTAssertEqual(onWhite.pixels, [200, 100, 50, 227, 177, 152, 255, 255, 255, 254, 254, 254])
        XCTAssertEqual(rgba.composited(on: .black).pixels, [200, 100, 50, 100, 50, 25, 0, 0, 0, 0, 0, 0])
        let rgb = rgba.toRGB()
        XCTAssertEqual(rgb.composited(on: .white), rgb)
    }

    func testCropInsideAndPastTheEdges() throws {
        let image = try Image(width: 3, height: 2, channels: 1, pixels: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try image.cropped(x: 1, y: 0, width: 2, height: 2).pixels, [2, 3, 5, 6])
        XCTAssertEqual(try image.cropped(x: -1, y: -1, width: 5, height: 4).pixels,
                       [0, 0, 0, 0, 0, /**/ 0, 1, 2, 3, 0, /**/ 0, 4, 5, 6, 0, /**/ 0, 0, 0, 0, 0])
        XCTAssertEqual(try image.cropped(x: 10, y: 10, width: 2, height: 1).pixels, [0, 0])
        XCTAssertThrowsError(try image.cropped(x: 0, y: 0, width: 0, height: 1))
    }
}
