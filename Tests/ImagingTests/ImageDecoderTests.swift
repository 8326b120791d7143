import Foundation
#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import Imaging

final class ImageDecoderTests: XCTestCase {
    func testEveryGeneratedPNGAndJPEGDecodesToTheExpectedPixels() throws {
        let cases = try Resources.manifest().decode
        XCTAssertEqual(cases.count, 18)
        for item in cases {
            let image = try ImageDecoder.decode(Resources.data(item.file))
            XCTAssertEqual(image.width, item.width, item.file)
            XCTAssertEqual(image.height, item.height, item.file)
            XCTAssertEqual(image.channels, item.channels, item.file)
            XCTAssertEqual(image.hasAlpha, item.hasAlpha, item.file)
            let expected = [UInt8](try Resources.data(item.file + ".expected"))
            XCTAssertEqual(image.pixels.count, expected.count, item.file)
            guard image.pixels.count == expected.count else { continue }
            // Exact: PNG is lossless and libjpeg-turbo's default (islow) IDCT matches Pillow's.
            XCTAssertEqual(byteDifference(image.pixels, expected).max, 0, item.file)
        }
    }

    func testColourTypeCoverage() throws {
        let names = Set(try Resources.manifest().decode.map(\.file))
        for name in ["gray1.png", "gray8.png", "gray16.png", "gray_alpha8.png", "gray_alpha16.png", "rgb8.png", "rgb16.png",
                     "rgba8.png", "rgba16.png", "palette.png", "palette_trns.png", "gray_trns.png", "rgb_trns.png",
                     "rgb8_interlaced.png", "gray.jpg", "rgb.jpg", "rgb_progressive.jpg", "cmyk.jpg"] {
            XCTAssertTrue(names.contains(name), name)
        }
    }

    func testSharedFixturePNGsMatchTheirStoredPixels() throws {
        let birefnet = try SafetensorsU8(url: Fixtures.url("birefnet/tiny_e2e.safetensors"))
        let synthetic = try ImageDecoder.decode(contentsOf: Fixtures.url("birefnet/tiny_synthetic_300x200.png"))
        XCTAssertEqual([synthetic.height, synthetic.width, synthetic.channels], try birefnet.tensor("image_rgb_uint8_hwc").shape)
        XCTAssertEqual(synthetic.pixels, try birefnet.tensor("image_rgb_uint8_hwc").bytes)
        let alpha = try ImageDecoder.decode(contentsOf: Fixtures.url("birefnet/tiny_alpha_hf_card_300x200.png"))
        XCTAssertEqual(alpha.channels, 1)
        XCTAssertEqual(alpha.pixels, try birefnet.tensor("alpha_hf_card_uint8").bytes)

        let openclip = try SafetensorsU8(url: Fixtures.url("openclip/preprocess_io.safetensors"))
        for k in 0..<3 {
            let image = try ImageDecoder.decode(contentsOf: Fixtures.url("openclip/preprocess_image\(k).png"))
            let stored = try openclip.tensor("input.image\(k)")
            XCTAssertEqual([image.height, image.width, image.channels], stored.shape)
            XCTAssertEqual(image.pixels, stored.bytes, "preprocess_image\(k).png")
        }
    }

    // MARK: - Unsupported and corrupt input

    func testOtherFormatsAreNamed() {
        let cases: [(String, [UInt8])] = [
            ("GIF", Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0]),
            ("WebP", Array("RIFF".utf8) + [0x20, 0, 0, 0] + Array("WEBPVP8 ".utf8)),
            ("BMP", Array("BM".utf8) + [UInt8](repeating: 0, count: 20)),
            ("TIFF", [0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0]),
        ]
        for (name, bytes) in cases {
            XCTAssertThrowsError(try ImageDecoder.decode(Data(bytes))) { error in
                XCTAssertEqual(error as? ImagingError, .unsupportedFormat(name))
                XCTAssertTrue("\(error)".contains(name))
            }
        }
        XCTAssertThrowsError(try ImageDecoder.decode(Data())) { error in
            XCTAssertEqual(error as? ImagingError, .unsupportedFormat("empty data"))
        }
        XCTAssertThrowsError(try ImageDecoder.decode(Data("hello world".utf8))) { error in
            guard case .unsupportedFormat(let text)? = error as? ImagingError else { return XCTFail("got \(error)") }
            XCTAssertTrue(text.contains("68 65 6c 6c"), text)
        }
    }

    private func assertCorrupt(_ data: Data, _ format: String, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ImageDecoder.decode(data), label, file: file, line: line) { error in
            guard case let .corrupt(reportedFormat, message)? = error as? ImagingError else {
                return XCTFail("\(label): got \(error)", file: file, line: line)
            }
            XCTAssertEqual(reportedFormat, format, label, file: file, line: line)
            XCTAssertFalse(message.isEmpty, label, file: file, line: line)
        }
    }

    func testTruncatedPNGThrowsAtEveryCutPoint() throws {
        let png = try Resources.data("rgba8.png")
        for length in [8, 12, 20, 33, 40, png.count / 2, png.count - 13, png.count - 1] {
            assertCorrupt(png.prefix(length), "PNG", "cut at \(length)")
        }
    }

    func testPNGGarbageAfterMagicAndBadCRC() throws {
        var garbage = pngSignature
        garbage += (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        assertCorrupt(Data(garbage), "PNG", "garbage after magic")

        var badHeaderCRC = [UInt8](try Resources.data("rgb8.png"))
        badHeaderCRC[29] ^= 0xFF  // last byte of the IHDR CRC (8 signature + 4 length + 4 type + 13 data)
        assertCorrupt(Data(badHeaderCRC), "PNG", "IHDR CRC")

        var badDataCRC = [UInt8](try Resources.data("rgb8.png"))
        let idat = try XCTUnwrap(Data(badDataCRC).range(of: Data("IDAT".utf8))).upperBound
        badDataCRC[idat + 2] ^= 0x55  // inside the compressed data: the chunk CRC no longer matches
        assertCorrupt(Data(badDataCRC), "PNG", "IDAT CRC")
    }

    func testCorruptJPEG() throws {
        let jpeg = try Resources.data("rgb.jpg")
        for length in [3, 20, jpeg.count / 3, jpeg.count / 2, jpeg.count - 2] {
            assertCorrupt(jpeg.prefix(length), "JPEG", "cut at \(length)")
        }
        let garbage = Data([0xFF, 0xD8, 0xFF] + (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 91 &+ 7) })
        assertCorrupt(garbage, "JPEG", "garbage after magic")
    }

    func testProcessSurvivesManyCorruptDecodes() throws {
        // Flip bytes all over valid files: each decode must either succeed or throw, never abort.
        for name in ["rgb8.png", "palette_trns.png", "rgb.jpg", "rgb_progressive.jpg"] {
            let original = [UInt8](try Resources.data(name))
            for position in stride(from: 2, to: original.count, by: max(1, original.count / 60)) {
                var mutated = original
                mutated[position] ^= 0xA5
                do {
                    let image = try ImageDecoder.decode(Data(mutated))
                    XCTAssertEqual(image.pixels.count, image.width * image.height * image.channels)
                } catch {
                    XCTAssertTrue(error is ImagingError, "\(name)@\(position): \(error)")
                }
            }
        }
    }

    // MARK: - Decompression bombs

    func testPNGBombHeaderIsRejectedBeforeAllocation() throws {
        // IHDR declares 100000 x 100000 RGBA (40 GB) but the file is a few dozen bytes.
        let ihdr = bigEndian(100_000) + bigEndian(100_000) + [8, 6, 0, 0, 0]
        let bomb = pngSignature + pngChunk("IHDR", ihdr) + pngChunk("IDAT", [0x78, 0x9C, 0x03, 0x00]) + pngChunk("IEND", [])
        XCTAssertThrowsError(try ImageDecoder.decode(Data(bomb), maxPixels: 50_000_000)) { error in
            guard case let .tooLarge(format, message)? = error as? ImagingError else { return XCTFail("got \(error)") }
            XCTAssertEqual(format, "PNG")
            XCTAssertTrue(message.contains("100000x100000"), message)
        }
        XCTAssertThrowsError(try ImageDecoder.decode(Resources.data("rgb8.png"), maxPixels: 13 * 9 - 1)) { error in
            guard case .tooLarge? = error as? ImagingError else { return XCTFail("got \(error)") }
        }
        XCTAssertNoThrow(try ImageDecoder.decode(Resources.data("rgb8.png"), maxPixels: 13 * 9))
    }

    func testJPEGBombHeaderIsRejectedBeforeAllocation() throws {
        var jpeg = [UInt8](try Resources.data("rgb.jpg"))
        // Find the SOF0/SOF2 marker and declare 60000 x 60000 (3.6 gigapixels).
        let sof = try XCTUnwrap((0 ..< jpeg.count - 9).first { jpeg[$0] == 0xFF && (jpeg[$0 + 1] == 0xC0 || jpeg[$0 + 1] == 0xC2) })
        jpeg[sof + 5] = 0xEA; jpeg[sof + 6] = 0x60  // height 60000
        jpeg[sof + 7] = 0xEA; jpeg[sof + 8] = 0x60  // width 60000
        XCTAssertThrowsError(try ImageDecoder.decode(Data(jpeg), maxPixels: 100_000_000)) { error in
            guard case let .tooLarge(format, message)? = error as? ImagingError else { return XCTFail("got \(error)") }
            XCTAssertEqual(format, "JPEG")
            XCTAssertTrue(message.contains("60000x60000"), message)
        }
    }

    func testNonPositivePixelLimitIsAnArgumentError() throws {
        XCTAssertThrowsError(try ImageDecoder.decode(Resources.data("rgb8.png"), maxPixels: 0)) { error in
            guard case .invalidArgument? = error as? ImagingError else { return XCTFail("got \(error)") }
        }
    }
}

final class CodecWarningTests: XCTestCase {
    /// Runs `body` with file descriptor 2 redirected into a pipe and returns what was written there.
    private func capturingStandardError(_ body: () throws -> Void) throws -> String {
        fflush(stderr)
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw ImagingError.invalidArgument("pipe failed") }
        let saved = dup(STDERR_FILENO)
        dup2(ends[1], STDERR_FILENO)
        close(ends[1])
        var failure: Error?
        do { try body() } catch { failure = error }
        fflush(stderr)
        dup2(saved, STDERR_FILENO)
        close(saved)
        var captured = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(ends[0], &buffer, buffer.count)
            if n <= 0 { break }
            captured += buffer[0..<n]
        }
        close(ends[0])
        if let failure { throw failure }
        return String(decoding: captured, as: UTF8.self)
    }

    func testRecoverableDamageDecodesSilently() throws {
        // A tEXt chunk with a wrong CRC: libpng discards it with a warning (ancillary chunk).
        let png = [UInt8](try Resources.data("rgb8.png"))
        var badText = pngChunk("tEXt", Array("Comment\0hello".utf8))
        badText[badText.count - 1] ^= 0xFF
        let damagedPNG = Array(png[..<33]) + badText + Array(png[33...])
        // Extraneous bytes before EOI: libjpeg warns "Corrupt JPEG data: 3 extraneous bytes before marker".
        let jpeg = [UInt8](try Resources.data("rgb.jpg"))
        let damagedJPEG = Array(jpeg.dropLast(2)) + [0x00, 0x01, 0x02, 0xFF, 0xD9]

        let output = try capturingStandardError {
            XCTAssertEqual(try ImageDecoder.decode(Data(damagedPNG)), try ImageDecoder.decode(Data(png)))
            XCTAssertEqual(try ImageDecoder.decode(Data(damagedJPEG)), try ImageDecoder.decode(Data(jpeg)))
            _ = try? ImageDecoder.decode(Data(png.prefix(png.count / 2)))
            _ = try? ImageDecoder.decode(Data(jpeg.prefix(jpeg.count / 2)))
        }
        XCTAssertEqual(output, "", "codec warnings must not reach stderr")
    }
}

/// `decode(contentsOf:)` names the file in every error.
final class ImageFileErrorTests: XCTestCase {
    func testErrorsNameTheFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: url) }
        // A PNG signature and an IHDR claiming 2^31 x 2^31 pixels.
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        bytes += [0x80, 0, 0, 0, 0x80, 0, 0, 0, 8, 6, 0, 0, 0, 0, 0, 0, 0]
        try Data(bytes).write(to: url)
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: url)) { error in
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
            guard case .inFile(let path, _)? = error as? ImagingError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, url.path)
        }
        let missing = url.appendingPathExtension("missing")
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: missing)) { error in
            XCTAssertTrue("\(error)".contains(missing.path), "\(error)")
        }
    }
}
