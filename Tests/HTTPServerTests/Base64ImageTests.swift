import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

final class Base64ImageTests: XCTestCase {
    /// Bytes with PNG magic and every byte value, so the base64 text contains `+` and `/`.
    static let pngBytes = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + Data((0..<600).map { UInt8($0 % 251) })
    static let jpegBytes = Data([0xFF, 0xD8, 0xFF, 0xE0]) + Data((0..<301).map { UInt8(($0 * 7) % 256) })

    private func assertImage(_ text: String, _ expected: Data, _ format: ImageFormat,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try Base64Image.classify(text), .image(expected, format), file: file, line: line)
    }

    func testSniff() {
        XCTAssertEqual(ImageFormat.sniff(Self.pngBytes), .png)
        XCTAssertEqual(ImageFormat.sniff(Self.jpegBytes), .jpeg)
        XCTAssertNil(ImageFormat.sniff(Data("GIF89a".utf8)))
        XCTAssertNil(ImageFormat.sniff(Data()))
    }

    func testDetectsStandardBase64() {
        assertImage(Self.pngBytes.base64EncodedString(), Self.pngBytes, .png)
        assertImage(Self.jpegBytes.base64EncodedString(), Self.jpegBytes, .jpeg)
    }

    func testToleratesDataURLWhitespaceURLSafeAndMissingPadding() {
        let standard = Self.jpegBytes.base64EncodedString()
        XCTAssertTrue(standard.hasSuffix("="), "the fixture should need padding")
        XCTAssertTrue(standard.contains("+") || standard.contains("/"))
        assertImage("data:image/jpeg;base64," + standard, Self.jpegBytes, .jpeg)
        assertImage("DATA:image/jpeg;charset=x;BASE64,\n" + standard, Self.jpegBytes, .jpeg)
        assertImage("  \n" + Self.jpegBytes.base64EncodedString(options: [.lineLength76Characters]) + "\r\n",
                    Self.jpegBytes, .jpeg)
        let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        assertImage(urlSafe, Self.jpegBytes, .jpeg)
    }

    func testSpacesStandForPlusFromUnencodedForms() {
        let standard = Self.pngBytes.base64EncodedString()
        XCTAssertTrue(standard.contains("+"))
        assertImage(standard.replacingOccurrences(of: "+", with: " "), Self.pngBytes, .png)
    }

    func testTextPromptsStayText() throws {
        for prompt in ["dog", "a red sports car", "A wooden chair with four legs", "aGVsbG8gdGhlcmUgZnJpZW5k",
                       "Rubber duck", "iVBOR", "    "] {
            XCTAssertEqual(try Base64Image.classify(prompt), .text(prompt), prompt)
        }
    }

    func testBrokenImagesAreErrors() {
        let png = Self.pngBytes.base64EncodedString()
        XCTAssertThrowsError(try Base64Image.classify(String(png.dropLast(3)) + "!!")) { error in
            guard case .invalidBase64? = error as? Base64ImageError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Base64Image.classify(png + "=A")) { error in
            guard case .invalidBase64? = error as? Base64ImageError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Base64Image.classify("data:image/png," + png)) { error in
            guard case .invalidBase64? = error as? Base64ImageError else { return XCTFail("\(error)") }
        }
        let gif = Data("GIF89a".utf8) + Data(repeating: 7, count: 100)
        XCTAssertThrowsError(try Base64Image.classify(gif.base64EncodedString())) { error in
            guard case .notAnImage? = error as? Base64ImageError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Base64Image.decode("bm90IGFuIGltYWdl")) { error in
            guard case .notAnImage? = error as? Base64ImageError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Base64Image.decode("***")) { error in
            guard case .invalidBase64? = error as? Base64ImageError else { return XCTFail("\(error)") }
        }
    }

    func testDecoderMatchesFoundation() {
        for length in 0..<40 {
            let data = Data((0..<length).map { UInt8(($0 * 37 + length) % 256) })
            let text = data.base64EncodedString()
            XCTAssertEqual(Base64Image.decodeBase64(text.utf8), data.isEmpty ? nil : data, "length \(length)")
            XCTAssertEqual(Base64Image.decodeBase64(text.replacingOccurrences(of: "=", with: "").utf8),
                           data.isEmpty ? nil : data)
        }
        XCTAssertNil(Base64Image.decodeBase64("abcde".utf8), "one dangling sextet is not base64")
        XCTAssertNil(Base64Image.decodeBase64("ab=c".utf8), "padding only at the end")
        XCTAssertNil(Base64Image.decodeBase64("abc===".utf8))
    }
}
