import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

final class FormURLEncodedTests: XCTestCase {
    func testPlusAndPercentDecoding() throws {
        let form = try FormURLEncoded(parsing: "prompt=a+red%20car%21&seed=42&empty=&flag&name%C3%A9=caf%C3%A9&prompt=second")
        XCTAssertEqual(form["prompt"], "a red car!")
        XCTAssertEqual(form.values("prompt"), ["a red car!", "second"])
        XCTAssertEqual(form["seed"], "42")
        XCTAssertEqual(form["empty"], "")
        XCTAssertEqual(form["flag"], "")
        XCTAssertEqual(form["nameé"], "café")
        XCTAssertEqual(form.fields.count, 6)
    }

    func testEncodedPlusStaysPlus() throws {
        XCTAssertEqual(try FormURLEncoded(parsing: "b=ab%2Bcd%2F%3D%3D")["b"], "ab+cd/==")
    }

    func testRoundTrip() throws {
        let fields = [("prompt", "a+b c&d=e/é"), ("seed", "-3")]
        let form = try FormURLEncoded(parsing: FormURLEncoded.encode(fields))
        XCTAssertEqual(form.fields.map { [$0.name, $0.value] }, fields.map { [$0.0, $0.1] })
    }

    func testMalformedInput() {
        for text in ["a=%", "a=%2", "a=%zz", "a=%C3%28"] {
            XCTAssertThrowsError(try FormURLEncoded(parsing: text), text) { error in
                XCTAssertEqual((error as? HTTPError)?.status, .badRequest)
            }
        }
    }

    func testEmptyBody() throws {
        XCTAssertTrue(try FormURLEncoded(parsing: "").fields.isEmpty)
        XCTAssertTrue(try FormURLEncoded(parsing: "&&").fields.isEmpty)
    }
}

final class MediaTypeTests: XCTestCase {
    func testParameters() throws {
        let type = try XCTUnwrap(MediaType(parsing: "Multipart/Form-Data; charset=utf-8; boundary=\"a b;c\\\"d\""))
        XCTAssertEqual(type.essence, "multipart/form-data")
        XCTAssertEqual(type.parameters["boundary"], "a b;c\"d")
        XCTAssertEqual(type.parameters["charset"], "utf-8")
        XCTAssertNil(MediaType(parsing: "nonsense"))
        XCTAssertNil(MediaType(parsing: "a/b/c"))
    }
}

final class MultipartParserTests: XCTestCase {
    private func parts(_ body: Data, boundary: String) throws -> [MultipartPart] {
        try MultipartParser.parse(body, boundary: boundary)
    }

    func testBinaryPartsWithCRLFAndBoundaryLikeBytes() throws {
        let boundary = "XyZ-123"
        var binary = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0xFF])
        binary += Data("\r\n--XyZ-12\r\n".utf8)            // a prefix of the delimiter
        binary += Data("\r\n--XyZ-123abc\r\n".utf8)         // the boundary followed by other bytes
        binary += Data("x--XyZ-123\r\n".utf8)                // the boundary without the leading CRLF
        binary += Data("\r\n\r\n\r\n".utf8)
        binary += Data((0...255).map { UInt8($0) })
        var body = Data("preamble to ignore\r\n--XyZ-123\r\n".utf8)
        body += Data("Content-Disposition: form-data; name=\"prompt_image_file\"; filename=\"prompt.jpg\"\r\n".utf8)
        body += Data("Content-Type: image/jpeg\r\nX-Extra:  v \r\n\r\n".utf8)
        body += binary
        body += Data("\r\n--XyZ-123\r\nContent-Disposition: form-data; name=seed\r\n\r\n42\r\n".utf8)
        body += Data("--XyZ-123   \r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n".utf8)
        body += Data("--XyZ-123--\r\nepilogue --XyZ-123 ignored".utf8)

        let parsed = try parts(body, boundary: boundary)
        XCTAssertEqual(parsed.count, 3)
        XCTAssertEqual(parsed[0].name, "prompt_image_file")
        XCTAssertEqual(parsed[0].filename, "prompt.jpg")
        XCTAssertEqual(parsed[0].contentType, "image/jpeg")
        XCTAssertEqual(parsed[0].headers["x-extra"], "v")
        XCTAssertEqual(parsed[0].body, binary)
        XCTAssertEqual(parsed[1].name, "seed")
        XCTAssertNil(parsed[1].filename)
        XCTAssertEqual(parsed[1].text, "42")
        XCTAssertEqual(parsed[2].name, "empty")
        XCTAssertEqual(parsed[2].body.count, 0)
    }

    func testQuotedBoundaryFromContentType() throws {
        let type = try XCTUnwrap(MediaType(parsing: "multipart/form-data; boundary=\"weird:boundary with space\""))
        let boundary = try MultipartParser.boundary(from: type)
        XCTAssertEqual(boundary, "weird:boundary with space")
        let body = Data(("--weird:boundary with space\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n"
            + "a cat\r\n--weird:boundary with space--").utf8)
        XCTAssertEqual(try parts(body, boundary: boundary).first?.text, "a cat")
    }

    func testExtendedFilenameAndPartWithoutHeaders() throws {
        let body = Data(("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.png\"; "
            + "filename*=UTF-8''%C3%A9t%C3%A9.png\r\n\r\ndata\r\n--b\r\n\r\nno headers\r\n--b--").utf8)
        let parsed = try parts(body, boundary: "b")
        XCTAssertEqual(parsed[0].filename, "été.png")
        XCTAssertNil(parsed[1].name)
        XCTAssertEqual(parsed[1].text, "no headers")
    }

    func testMalformedBodies() throws {
        let cases = [
            "no boundary at all",
            "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nnever closed",
            "--bX\r\n\r\nx\r\n--b--",
            "--b\r\nbroken header line\r\n\r\nx\r\n--b--",
        ]
        for text in cases {
            XCTAssertThrowsError(try parts(Data(text.utf8), boundary: "b"), text) { error in
                XCTAssertEqual((error as? HTTPError)?.status, .badRequest, text)
            }
        }
        XCTAssertThrowsError(try MultipartParser.boundary(from: MediaType(parsing: "multipart/form-data")!))
        XCTAssertThrowsError(try MultipartParser.boundary(from: MediaType(parsing: "text/plain; boundary=x")!))
    }

    func testBuilderRoundTrip() throws {
        var builder = MultipartFormBody(boundary: "round-trip")
        let file = Data([0xFF, 0xD8, 0xFF, 0x0D, 0x0A, 0x2D, 0x2D])
        builder.addFile("prompt_image_file", filename: "prompt.jpg", contentType: "image/jpeg", data: file)
        builder.addField("seed", "7")
        let parsed = try parts(builder.body, boundary: "round-trip")
        XCTAssertEqual(parsed.map(\.name), ["prompt_image_file", "seed"])
        XCTAssertEqual(parsed[0].body, file)
    }
}
