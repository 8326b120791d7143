import Foundation
import HTTPServer

/// Builds fuzz cases against gen3d's routes: broken request lines, headers (missing, duplicate,
/// huge, bad characters), bodies (deep JSON, bad base64, broken multipart, truncated chunked
/// encoding, wrong Content-Length), resets mid-request and slow sends. Every case but the
/// `control` ones is malformed by construction, so a 2xx answer to it is a server bug.
public struct FuzzCaseGenerator: Sendable {
    public let seed: UInt64
    /// Host header value of well-formed parts (the server does not route by it).
    public let host: String

    public static var familyNames: [String] { families.map(\.name) }

    public init(seed: UInt64, host: String = "127.0.0.1") {
        self.seed = seed
        self.host = host
    }

    /// Mutation families, in the order their weights are listed.
    static let families: [(name: String, weight: Int)] = [
        ("request-line", 10), ("headers", 14), ("json-nesting", 8), ("json", 12), ("form", 8), ("multipart", 10),
        ("chunked", 8), ("content-length", 8), ("reset", 12), ("control", 10),
    ]

    public func makeCase(_ index: Int) -> FuzzCase {
        var random = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD6E8_FEB8_6659_FD93))
        _ = random.next()
        let total = Self.families.reduce(0) { $0 + $1.weight }
        var roll = random.int(0...(total - 1))
        var family = Self.families[0].name
        for entry in Self.families {
            if roll < entry.weight {
                family = entry.name
                break
            }
            roll -= entry.weight
        }
        var builder = Builder(random: random, host: host)
        let (variant, bytes, expectation) = builder.build(family)
        var delivery = FuzzCase.Delivery.whole
        if family == "reset" {
            delivery = .resetAfter(bytes: builder.random.int(0...max(0, bytes.count - 1)))
        } else if builder.random.chance(0.05), bytes.count > 1 {
            delivery = .slow(pieces: builder.random.int(2...min(8, bytes.count)),
                             delayMicroseconds: UInt32(builder.random.int(200...3000)))
        }
        return FuzzCase(index: index, kind: "\(family)/\(variant)", bytes: bytes, delivery: delivery,
                        expectation: family == "reset" ? .none : expectation)
    }
}

/// The per-case builder (holds the case's random stream).
struct Builder {
    var random: SplitMix64
    let host: String

    typealias Built = (variant: String, bytes: [UInt8], expectation: FuzzCase.Expectation)

    mutating func build(_ family: String) -> Built {
        switch family {
        case "request-line": return requestLine()
        case "headers": return headers()
        case "json-nesting": return jsonNesting()
        case "json": return json()
        case "form": return form()
        case "multipart": return multipart()
        case "chunked": return chunked()
        case "content-length": return contentLength()
        case "reset": return reset()
        default: return control()
        }
    }

    // MARK: - Pieces

    private func request(_ method: String = "POST", _ path: String, headers: [(String, String)], body: [UInt8],
                         hostLine: Bool = true, contentLength: Bool = true) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\n"
        if hostLine { head += "Host: \(host)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if contentLength { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    private mutating func text(_ range: ClosedRange<Int>) -> String {
        let words = ["a", "red", "chair", "lamp", "duck", "wooden", "tiny", "robot", "blue", "cat"]
        return (0..<random.int(range)).map { _ in random.pick(words) }.joined(separator: " ")
    }

    private static let jpegBytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]
    private static let gifBytes: [UInt8] = Array("GIF89a".utf8) + [1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]

    /// A valid generation request of a random route (the base the body mutations break).
    private mutating func validGeneration() -> (path: String, contentType: String, body: [UInt8]) {
        switch random.int(0...2) {
        case 0:
            return ("/generate/", "application/x-www-form-urlencoded",
                    Array(FormURLEncoded.encode([("prompt", text(1...6)), ("seed", String(random.int(0...99)))]).utf8))
        case 1:
            return ("/generate", "application/json", Array("{\"prompt\": \"\(text(1...6))\", \"seed\": \(random.int(0...99))}".utf8))
        default:
            var form = MultipartFormBody(boundary: "fz\(random.int(0...9999))")
            form.addFile("prompt_image_file", filename: "p.jpg", contentType: "image/jpeg", data: Data(Self.jpegBytes))
            form.addField("seed", String(random.int(0...99)))
            return ("/generate", form.contentType, Array(form.body))
        }
    }

    // MARK: - Families

    private mutating func requestLine() -> Built {
        let variants: [(String, String)] = [
            ("bad-method", "G(T"), ("no-version", ""), ("lowercase-version", "http/1.1"), ("http2", "HTTP/2.0"),
            ("http09", "HTTP/0.9"), ("two-digit-version", "HTTP/1.10"), ("extra-part", "HTTP/1.1 extra"),
            ("no-slash", ""), ("control-in-target", ""), ("double-space", ""), ("overlong-target", ""), ("binary", ""),
        ]
        let (variant, version) = random.pick(variants)
        let line: [UInt8]
        switch variant {
        case "bad-method": line = Array("G(T /health HTTP/1.1".utf8)
        case "no-version": line = Array("GET /health".utf8)
        case "no-slash": line = Array("GET health HTTP/1.1".utf8)
        case "control-in-target": line = Array("GET /hea".utf8) + [UInt8(random.int(0...31))] + Array("lth HTTP/1.1".utf8)
        case "double-space": line = Array("GET  /health HTTP/1.1".utf8)
        case "overlong-target": line = Array(("GET /" + String(repeating: "a", count: random.int(9000...20000)) + " HTTP/1.1").utf8)
        case "binary":
            // Random bytes with no space-separated three-part line can never be a request.
            line = (0..<random.int(1...200)).map { _ in UInt8(random.int(0...255)) }.filter { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D }
                + [0x01]
        default: line = Array("GET /health \(version)".utf8)
        }
        return (variant, line + Array("\r\nHost: \(host)\r\n\r\n".utf8), .rejected)
    }

    private mutating func headers() -> Built {
        let variants = ["missing-host", "duplicate-host", "conflicting-host", "bad-host", "no-colon", "space-before-colon",
                        "control-in-value", "obs-fold", "huge-value", "too-many", "bad-name", "bare-cr"]
        let variant = random.pick(variants)
        let base = random.chance(0.5) ? nil : validGeneration()
        var fields: [(String, String)] = base.map { [("Content-Type", $0.contentType)] } ?? []
        var hostLine = true
        var raw = ""
        switch variant {
        case "missing-host": hostLine = false
        case "duplicate-host": fields.append(("Host", host))
        case "conflicting-host": fields.append(("Host", "other.example"))
        case "bad-host": hostLine = false; fields.append(("Host", random.pick(["a b", "u@h", "h/p", "h\"x"])))
        case "no-colon": raw = "NoColonHere\r\n"
        case "space-before-colon": raw = "X-Thing : 1\r\n"
        case "control-in-value": raw = "X-Thing: a\u{7F}b\r\n"
        case "obs-fold": raw = "X-Thing: a\r\n folded\r\n"
        case "huge-value": fields.append(("X-Big", String(repeating: "v", count: random.int(33_000...70_000))))
        case "too-many": for n in 0..<random.int(101...300) { fields.append(("X-F\(n)", "1")) }
        case "bad-name": raw = "X\(random.pick(["(", ")", "/", "@", "{", "\u{01}"]))Y: 1\r\n"
        default: raw = "X-Thing: a\rb\r\n"
        }
        var bytes = request(base == nil ? "GET" : "POST", base?.path ?? "/health", headers: fields, body: base?.body ?? [],
                            hostLine: hostLine, contentLength: base != nil)
        if !raw.isEmpty {
            // Insert the raw field line just after the request line.
            let lineEnd = bytes.firstIndex(of: 0x0A)! + 1
            bytes.insert(contentsOf: Array(raw.utf8), at: lineEnd)
        }
        return (variant, bytes, .rejected)
    }

    private mutating func jsonNesting() -> Built {
        let depth = random.chance(0.3) ? random.int(33...600) : random.int(33...200_000)
        let variant = random.pick(["arrays", "objects", "mixed", "in-options", "closed-arrays"])
        var body = ""
        switch variant {
        case "arrays": body = String(repeating: "[", count: depth)
        case "objects": body = String(repeating: "{\"a\":", count: depth)
        case "mixed": body = (0..<depth).map { _ in random.chance(0.5) ? "[" : "{\"k\":" }.joined()
        case "in-options": body = "{\"prompt\": \"x\", \"options\": " + String(repeating: "[", count: depth)
        default: body = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        }
        if random.chance(0.3) { body += String(repeating: " ", count: random.int(1...3)) }
        return (variant, request("POST", "/generate", headers: [("Content-Type", "application/json")], body: Array(body.utf8)), .rejected)
    }

    private mutating func json() -> Built {
        let prompt = text(1...4)
        let gif = Data(Self.gifBytes).base64EncodedString()
        let variants: [(String, String)] = [
            ("truncated", "{\"prompt\": \"\(prompt)\", \"seed\": 4"), ("null-seed", "{\"prompt\": \"\(prompt)\", \"seed\": null}"),
            ("float-seed", "{\"prompt\": \"\(prompt)\", \"seed\": 1.5}"), ("string-seed", "{\"prompt\": \"\(prompt)\", \"seed\": \"7\"}"),
            ("huge-seed", "{\"prompt\": \"\(prompt)\", \"seed\": 123456789012345678901234567890}"),
            ("exp-seed", "{\"prompt\": \"\(prompt)\", \"seed\": 1e999}"),
            ("unknown-field", "{\"prompt\": \"\(prompt)\", \"colour\": 1}"), ("prompt-number", "{\"prompt\": 5}"),
            ("bad-base64-image", "{\"image\": \"%%%\(prompt)\"}"), ("gif-image", "{\"image\": \"\(gif)\"}"),
            ("both", "{\"prompt\": \"x\", \"image\": \"y\"}"), ("empty-object", "{}"), ("array", "[1, 2]"),
            ("empty-body", ""), ("unknown-option", "{\"prompt\": \"x\", \"options\": {\"turbo\": true}}"),
            ("bad-steps", "{\"prompt\": \"x\", \"options\": {\"image_steps\": 0}}"),
            ("null-steps", "{\"prompt\": \"x\", \"options\": {\"image_steps\": null}}"),
            ("bad-utf8", "{\"prompt\": \"\u{FFFD}\"}"), ("many-values", "[" + String(repeating: "0,", count: 5000) + "0]"),
            ("trailing-garbage", "{\"prompt\": \"x\"} x"), ("empty-prompt", "{\"prompt\": \"   \"}"),
        ]
        let (variant, text) = random.pick(variants)
        var body = Array(text.utf8)
        if variant == "bad-utf8" { body = Array("{\"prompt\": \"".utf8) + [0xC3, 0x28, 0xFF] + Array("\"}".utf8) }
        return (variant, request("POST", "/generate", headers: [("Content-Type", "application/json")], body: body), .rejected)
    }

    private mutating func form() -> Built {
        let gif = Data(Self.gifBytes).base64EncodedString()
        let variants: [(String, [(String, String)])] = [
            ("gif-base64", [("prompt", gif)]), ("gif-signature", [("prompt", "R0lGODlh")]),
            ("png-signature-bad", [("prompt", "iVBORw0KGgo!!\(random.int(0...99))")]), ("jpeg-signature-bad", [("prompt", "/9j/$$")]),
            ("empty-prompt", [("prompt", "  ")]), ("no-prompt", [("seed", "3")]), ("bad-seed", [("prompt", "cat"), ("seed", "x1")]),
            ("huge-seed", [("prompt", "cat"), ("seed", "99999999999999999999999")]),
            ("float-seed", [("prompt", "cat"), ("seed", "1.5")]),
            ("long-prompt", [("prompt", String(repeating: "word ", count: 2000))]),
        ]
        let (variant, fields) = random.pick(variants)
        var body = Array(FormURLEncoded.encode(fields).utf8)
        var variantName = variant
        if random.chance(0.15) {
            body = Array("prompt=%zz%".utf8)  // malformed percent-encoding
            variantName = "bad-percent"
        }
        return (variantName, request("POST", "/generate/", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: body),
                .rejected)
    }

    private mutating func multipart() -> Built {
        let boundary = "fz\(random.int(0...99999))"
        let good = "--\(boundary)\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n"
        let variants: [(String, String, String)] = [
            ("no-boundary-param", "multipart/form-data", good + "--\(boundary)--\r\n"),
            ("boundary-absent", "multipart/form-data; boundary=\(boundary)", "nothing here"),
            ("not-closed", "multipart/form-data; boundary=\(boundary)", good),
            ("part-header-no-colon", "multipart/form-data; boundary=\(boundary)",
             "--\(boundary)\r\nbroken header\r\n\r\nx\r\n--\(boundary)--\r\n"),
            ("name-stray-quote", "multipart/form-data; boundary=\(boundary)",
             good + "--\(boundary)\r\nContent-Disposition: form-data; name=seed\"\r\n\r\n7\r\n--\(boundary)--\r\n"),
            ("name-no-equals", "multipart/form-data; boundary=\(boundary)",
             good + "--\(boundary)\r\nContent-Disposition: form-data; name seed\r\n\r\n7\r\n--\(boundary)--\r\n"),
            ("name-unterminated", "multipart/form-data; boundary=\(boundary)",
             good + "--\(boundary)\r\nContent-Disposition: form-data; name=\"seed\r\n\r\n7\r\n--\(boundary)--\r\n"),
            ("no-disposition", "multipart/form-data; boundary=\(boundary)",
             good + "--\(boundary)\r\nContent-Type: text/plain\r\n\r\n7\r\n--\(boundary)--\r\n"),
            ("gif-file", "multipart/form-data; boundary=\(boundary)",
             "--\(boundary)\r\nContent-Disposition: form-data; name=\"prompt_image_file\"; filename=\"a.gif\"\r\n\r\n"
                + String(decoding: Self.gifBytes, as: UTF8.self) + "\r\n--\(boundary)--\r\n"),
            ("bad-seed", "multipart/form-data; boundary=\(boundary)",
             good + "--\(boundary)\r\nContent-Disposition: form-data; name=\"seed\"\r\n\r\nseven\r\n--\(boundary)--\r\n"),
            ("long-boundary", "multipart/form-data; boundary=" + String(repeating: "b", count: 201), good),
        ]
        let (variant, contentType, body) = random.pick(variants)
        return (variant, request("POST", random.chance(0.5) ? "/generate" : "/generate/", headers: [("Content-Type", contentType)],
                                 body: Array(body.utf8)), .rejected)
    }

    private mutating func chunked() -> Built {
        let base = validGeneration()
        let body = base.body
        let cut = random.int(0...max(0, body.count - 1))
        let chunk = "\(String(body.count, radix: 16))\r\n"
        let variants: [(String, String)] = [
            ("bad-hex", "zz\r\n"), ("size-overflow", "fffffffffffffffffffff\r\n"), ("missing-crlf", chunk + String(decoding: body, as: UTF8.self) + "XX"),
            ("truncated", chunk + String(decoding: body[..<cut], as: UTF8.self)), ("no-last-chunk", chunk + String(decoding: body, as: UTF8.self) + "\r\n"),
            ("bad-extension", "\(String(body.count, radix: 16));x=\u{01}\r\n"), ("bad-trailer", chunk + String(decoding: body, as: UTF8.self) + "\r\n0\r\nBad trailer\r\n\r\n"),
            ("with-content-length", ""), ("gzip", ""),
        ]
        let (variant, payload) = random.pick(variants)
        var fields = [("Content-Type", base.contentType), ("Transfer-Encoding", variant == "gzip" ? "gzip, chunked" : "chunked")]
        if variant == "with-content-length" { fields.append(("Content-Length", "5")) }
        let head = request("POST", base.path, headers: fields, body: [], contentLength: false)
        let bytes = head + Array((variant == "with-content-length" || variant == "gzip" ? chunk : payload).utf8)
        return (variant, bytes, .rejected)
    }

    private mutating func contentLength() -> Built {
        let base = validGeneration()
        let variants = ["longer-than-sent", "json-cut-short", "negative", "not-a-number", "conflicting", "over-limit", "plus-sign"]
        let variant = random.pick(variants)
        var fields = [("Content-Type", base.contentType)]
        var body = base.body
        switch variant {
        case "longer-than-sent":
            fields.append(("Content-Length", String(body.count + random.int(1...5000))))
        case "json-cut-short":
            // A strict prefix of a JSON object is never valid JSON; the rest is a second, garbage request.
            let json = Array("{\"prompt\": \"\(text(1...4))\", \"seed\": \(random.int(0...9))}".utf8)
            fields = [("Content-Type", "application/json"), ("Content-Length", String(random.int(0...(json.count - 2))))]
            body = json
            return (variant, request("POST", "/generate", headers: fields, body: body, contentLength: false), .rejected)
        case "negative": fields.append(("Content-Length", "-\(body.count)"))
        case "not-a-number": fields.append(("Content-Length", "\(body.count)x"))
        case "conflicting":
            fields.append(("Content-Length", String(body.count)))
            fields.append(("Content-Length", String(body.count + 1)))
        case "over-limit": fields.append(("Content-Length", String(random.int((64 << 20) + 1...Int(Int32.max)))))
        default: fields.append(("Content-Length", "+\(body.count)"))
        }
        return (variant, request("POST", base.path, headers: fields, body: body, contentLength: false), .rejected)
    }

    private mutating func reset() -> Built {
        let base = validGeneration()
        var bytes = request("POST", base.path, headers: [("Content-Type", base.contentType)], body: base.body)
        if random.chance(0.3) {
            // A large declared body, partly sent: the server must free what it buffered at once.
            bytes = request("POST", base.path, headers: [("Content-Type", base.contentType),
                                                         ("Content-Length", String(random.int(100_000...900_000)))],
                            body: Array(repeating: UInt8(ascii: "a"), count: random.int(1...200_000)), contentLength: false)
        }
        return ("mid-request", bytes, .none)
    }

    private mutating func control() -> Built {
        ("health", request("GET", "/health", headers: [], body: [], contentLength: false), .success)
    }
}
