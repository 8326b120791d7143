import Splatting
import CLIPValidate
import XCTest

final class ContactSheetTests: XCTestCase {
    private func solid(_ value: UInt8, width: Int = 2, height: Int = 2) -> [UInt8] {
        Array(repeating: value, count: width * height * 3)
    }

    func testImagesAreLaidOutInRowsWithGaps() throws {
        let sheet = try ContactSheet(images: [solid(10), solid(20), solid(30)], imageWidth: 2, imageHeight: 2,
                                     columns: 2, gap: 1, fill: SIMD3(1, 2, 3))
        XCTAssertEqual(sheet.width, 5)
        XCTAssertEqual(sheet.height, 5)
        XCTAssertEqual(sheet.rgb.count, 75)
        func at(_ x: Int, _ y: Int) -> [UInt8] { Array(sheet.rgb[(3 * (y * 5 + x))..<(3 * (y * 5 + x) + 3)]) }
        XCTAssertEqual(at(0, 0), [10, 10, 10])
        XCTAssertEqual(at(1, 1), [10, 10, 10])
        XCTAssertEqual(at(2, 0), [1, 2, 3], "gap")
        XCTAssertEqual(at(3, 0), [20, 20, 20])
        XCTAssertEqual(at(4, 1), [20, 20, 20])
        XCTAssertEqual(at(0, 2), [1, 2, 3], "gap row")
        XCTAssertEqual(at(0, 3), [30, 30, 30])
        XCTAssertEqual(at(1, 4), [30, 30, 30])
        XCTAssertEqual(at(3, 3), [1, 2, 3], "empty cell")
    }

    func testPixelsKeepTheirPlaceInsideEachCell() throws {
        let image: [UInt8] = [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]   // 3 x 2
        let sheet = try ContactSheet(images: [image, image], imageWidth: 3, imageHeight: 2, columns: 5)
        XCTAssertEqual(sheet.width, 6, "columns never exceed the image count")
        XCTAssertEqual(sheet.height, 2)
        XCTAssertEqual(sheet.rgb.enumerated().filter { $0.offset % 3 == 0 }.map(\.element),
                       [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6])
    }

    func testRenderedViewsTurnIntoTheirEightBitImages() throws {
        let view = try RenderedView(width: 1, height: 1, rgb: [1, 0.5, 0], alpha: [1])
        let sheet = try ContactSheet(views: [view, view], columns: 1, gap: 0)
        XCTAssertEqual(sheet.rgb, [255, 127, 0, 255, 127, 0])
        XCTAssertEqual(sheet.height, 2)
    }

    func testBadInputsAreRejected() {
        XCTAssertThrowsError(try ContactSheet(images: [], imageWidth: 2, imageHeight: 2, columns: 1))
        XCTAssertThrowsError(try ContactSheet(images: [solid(1)], imageWidth: 2, imageHeight: 2, columns: 0))
        XCTAssertThrowsError(try ContactSheet(images: [solid(1)], imageWidth: 2, imageHeight: 2, columns: 1, gap: -1))
        XCTAssertThrowsError(try ContactSheet(images: [solid(1), solid(1, width: 3)], imageWidth: 2, imageHeight: 2,
                                              columns: 2)) { error in
            XCTAssertTrue("\(error)".contains("image 1"), "\(error)")
        }
        XCTAssertThrowsError(try ContactSheet(views: [], columns: 1))
    }
}
