import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

final class GenerationRequestDecoderTests: XCTestCase {
    private func request(_ contentType: String?, _ body: Data) -> HTTPRequest {
        var headers = HTTPHeaders()
        if let contentType { headers.add("Content-Type", contentType) }
        return HTTPRequest(method: .post, target: "/generate", headers: headers, body: body)
    }

    private func decode(_ contentType: String?, _ body: String, route: GenerationRoute = .legacy) throws -> GenerationRequest {
        try GenerationRequestDecoder.decode(request(contentType, Data(body.utf8)), route: route, requestID: "r1")
    }

    private func assertStatus(_ status: Int, _ contentType: String?, _ body: String, route: GenerationRoute = .legacy,
                              mentions: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(contentType, body, route: route), file: file, line: line) { error in
            let httpError = error as? HTTPError
            XCTAssertEqual(httpError?.status.code, status, "\(error)", file: file, line: line)
            if let mentions {
                XCTAssertTrue(httpError?.message.contains(mentions) == true, "\(error)", file: file, line: line)
            }
        }
    }

    func testLegacyForm() throws {
        let decoded = try decode("application/x-www-form-urlencoded", "prompt=a+blue+vase&seed=12")
        XCTAssertEqual(decoded.prompt, .text("a blue vase"))
        XCTAssertEqual(decoded.seed, 12)
        XCTAssertEqual(decoded.route, .legacy)
        XCTAssertEqual(decoded.requestID, "r1")

        let png = Base64ImageTests.pngBytes
        let image = try decode("application/x-www-form-urlencoded; charset=utf-8",
                               "prompt=" + FormURLEncoded.encodeComponent(png.base64EncodedString()))
        XCTAssertEqual(image.prompt, .image(ImagePrompt(data: png, format: .png)))
    }

    func testJSONBody() throws {
        let jpeg = Base64ImageTests.jpegBytes.base64EncodedString()
        let decoded = try decode("application/json", """
            {"image": "\(jpeg)", "seed": -5, "options": {"generator": "lgm", "preset": "fast", "image_steps": 4,
             "structure_steps": 12, "latent_steps": 12, "guidance": 3.5, "validate": true, "min_score": 0.6,
             "time_budget_s": 25}}
            """)
        XCTAssertEqual(decoded.route, .json)
        XCTAssertEqual(decoded.seed, -5)
        XCTAssertEqual(decoded.prompt, .image(ImagePrompt(data: Base64ImageTests.jpegBytes, format: .jpeg)))
        XCTAssertEqual(decoded.options, GenerationOptions(generator: "lgm", preset: "fast", imageSteps: 4, structureSteps: 12,
                                                          latentSteps: 12, guidance: 3.5, validate: true, minScore: 0.6,
                                                          timeBudget: 25))
        XCTAssertEqual(try decode("application/json", "{\"prompt\": \" a lamp \"}").prompt, .text("a lamp"))
        // An explicit null is not "absent": it would silently become a random seed (issue 16).
        assertStatus(400, "application/json", "{\"prompt\": \"a lamp\", \"seed\": null}", mentions: "'seed'")
        assertStatus(400, "application/json", "{\"prompt\": \"a lamp\", \"options\": {\"image_steps\": null}}",
                     mentions: "'options.image_steps'")
        let routed = try decode("application/json", "{\"prompt\": \"a lamp\", \"options\": {\"generator\": \"lgm\", \"text_route\": \"mvdream\"}}")
        XCTAssertEqual(routed.options.textRoute, "mvdream")
        XCTAssertEqual(routed.options.generator, "lgm")
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"options\": {\"text_route\": \"\"}}", mentions: "'options.text_route'")
    }

    func testJSONErrorsNameTheField() {
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"colour\": \"red\"}", mentions: "'colour'")
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"options\": {\"turbo\": true}}", mentions: "'options.turbo'")
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"seed\": \"five\"}", mentions: "'seed' must be an integer")
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"seed\": 1.5}", mentions: "'seed'")
        assertStatus(400, "application/json", "{\"prompt\": 3}", mentions: "'prompt' must be a string")
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"options\": {\"image_steps\": 0}}",
                     mentions: "options.image_steps")
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"options\": {\"min_score\": 2}}", mentions: "min_score")
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"options\": {\"validate\": 1}}", mentions: "options.validate")
        assertStatus(400, "application/json", "{\"prompt\": \"x\", \"image\": \"y\"}", mentions: "not both")
        assertStatus(400, "application/json", "{}", mentions: "missing field")
        assertStatus(400, "application/json", "[1, 2]", mentions: "JSON object")
        assertStatus(400, "application/json", "{\"prompt\": ", mentions: "not valid JSON")
        assertStatus(400, "application/json", "{\"image\": \"%%%%\"}", mentions: "'image'")
        assertStatus(422, "application/json", "{\"image\": \"bm90IGFuIGltYWdl\"}", mentions: "not a PNG or JPEG")
    }

    func testFormErrors() {
        assertStatus(400, "application/x-www-form-urlencoded", "seed=3", mentions: "missing field 'prompt'")
        assertStatus(400, "application/x-www-form-urlencoded", "seed=3", route: .competition,
                     mentions: "missing field 'prompt_image_file'")
        assertStatus(400, "application/x-www-form-urlencoded", "prompt=+++", mentions: "empty")
        assertStatus(400, "application/x-www-form-urlencoded", "prompt=cat&seed=abc", mentions: "'seed' must be an integer")
        assertStatus(400, "application/x-www-form-urlencoded", "prompt=iVBORw0KGgo%21%21%21%21%21%21%21",
                     mentions: "not valid base64")
        assertStatus(400, "application/x-www-form-urlencoded",
                     "prompt=" + String(repeating: "word ", count: 2000), mentions: "longer than")
        assertStatus(415, "text/plain", "prompt=cat", mentions: "text/plain")
        assertStatus(415, nil, "prompt=cat", mentions: "missing Content-Type")
        assertStatus(400, nil, "", mentions: "missing field 'prompt'")
        assertStatus(415, "garbage", "x", mentions: "malformed Content-Type")
    }

    func testMultipartFields() throws {
        var body = MultipartFormBody()
        body.addFile("prompt_image_file", filename: "prompt.jpg", contentType: "image/jpeg", data: Base64ImageTests.jpegBytes)
        body.addField("seed", "42")
        let decoded = try GenerationRequestDecoder.decode(request(body.contentType, body.body), route: .competition,
                                                          requestID: "x")
        XCTAssertEqual(decoded.prompt, .image(ImagePrompt(data: Base64ImageTests.jpegBytes, format: .jpeg,
                                                          filename: "prompt.jpg", contentType: "image/jpeg")))
        XCTAssertEqual(decoded.seed, 42)

        var textPrompt = MultipartFormBody()
        textPrompt.addField("prompt", "a robot")
        XCTAssertEqual(try GenerationRequestDecoder.decode(request(textPrompt.contentType, textPrompt.body), route: .legacy,
                                                           requestID: "x").prompt, .text("a robot"))

        var notImage = MultipartFormBody()
        notImage.addFile("prompt_image_file", filename: "x.gif", contentType: "image/gif", data: Data("GIF89a...".utf8))
        XCTAssertThrowsError(try GenerationRequestDecoder.decode(request(notImage.contentType, notImage.body),
                                                                 route: .competition, requestID: "x")) { error in
            XCTAssertEqual((error as? HTTPError)?.status, .unprocessableContent)
        }
        var empty = MultipartFormBody()
        empty.addFile("prompt_image_file", filename: "x.jpg", contentType: "image/jpeg", data: Data())
        XCTAssertThrowsError(try GenerationRequestDecoder.decode(request(empty.contentType, empty.body),
                                                                 route: .competition, requestID: "x")) { error in
            XCTAssertEqual((error as? HTTPError)?.status, .badRequest)
        }
    }
}
