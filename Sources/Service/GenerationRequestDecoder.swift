import Foundation
import HTTPServer
import Pipeline

/// Turns a `POST /generate[/]` request into a `GenerationRequest`, or throws the `HTTPError` (4xx)
/// the client gets. Pure function of the request: no service, no queue.
///
/// - `application/x-www-form-urlencoded` and `multipart/form-data`: field `prompt` (text, a base64
///   image, or an image file part) and/or file `prompt_image_file`, optional `seed`. The legacy
///   route looks for `prompt` first, the competition route for `prompt_image_file` first.
/// - `application/json`: `{"prompt": ..., "image": base64, "seed": int, "options": {...}}`;
///   unknown fields are rejected by name.
public enum GenerationRequestDecoder {
    public static let maxPromptBytes = 8 * 1024

    public static func decode(_ request: HTTPRequest, route: GenerationRoute, requestID: String) throws -> GenerationRequest {
        guard let contentType = request.contentType else {
            if request.headers["Content-Type"] != nil {
                throw HTTPError(.unsupportedMediaType, "malformed Content-Type '\(request.headers["Content-Type"]!)'")
            }
            if request.body.isEmpty { throw HTTPError(.badRequest, "missing field '\(primaryField(route))'") }
            throw HTTPError(.unsupportedMediaType, "missing Content-Type; \(supportedTypes)")
        }
        switch contentType.essence {
        case "application/x-www-form-urlencoded":
            let form = try FormURLEncoded(parsing: request.body)
            var fields: [String: FieldValue] = [:]
            for (name, value) in form.fields where fields[name] == nil { fields[name] = .text(value) }
            return try decodeFields(fields, route: route, requestID: requestID)
        case "multipart/form-data":
            let boundary = try MultipartParser.boundary(from: contentType)
            var fields: [String: FieldValue] = [:]
            for (number, part) in try MultipartParser.parse(request.body, boundary: boundary).enumerated() {
                if let problem = FormDataDisposition.problem(part.headers["Content-Disposition"]) {
                    throw HTTPError(.badRequest, "multipart part \(number + 1) \(problem)")
                }
                guard let name = part.name, fields[name] == nil else { continue }
                if part.filename == nil, let text = part.text {
                    fields[name] = .text(text)
                } else {
                    fields[name] = .file(part.body, filename: part.filename, contentType: part.contentType)
                }
            }
            return try decodeFields(fields, route: route, requestID: requestID)
        case "application/json":
            return try decodeJSON(request.body, requestID: requestID)
        default:
            throw HTTPError(.unsupportedMediaType, "unsupported Content-Type '\(contentType.essence)'; \(supportedTypes)")
        }
    }

    private static let supportedTypes =
        "use application/x-www-form-urlencoded, multipart/form-data or application/json"

    private static func primaryField(_ route: GenerationRoute) -> String {
        route == .competition ? "prompt_image_file" : "prompt"
    }

    // MARK: - Form and multipart

    enum FieldValue {
        case text(String)
        case file(Data, filename: String?, contentType: String?)
    }

    private static func decodeFields(_ fields: [String: FieldValue], route: GenerationRoute,
                                     requestID: String) throws -> GenerationRequest {
        let order = route == .competition ? ["prompt_image_file", "prompt"] : ["prompt", "prompt_image_file"]
        guard let name = order.first(where: { fields[$0] != nil }), let value = fields[name] else {
            throw HTTPError(.badRequest, "missing field '\(primaryField(route))'")
        }
        let prompt = try promptFromField(name, value)
        let seed = try fields["seed"].map { value -> Int in
            switch value {
            case .text(let text): return try parseSeed(text)
            case .file(let data, _, _): return try parseSeed(String(decoding: data, as: UTF8.self))
            }
        }
        return GenerationRequest(prompt: prompt, seed: seed, route: route, requestID: requestID)
    }

    private static func promptFromField(_ name: String, _ value: FieldValue) throws -> RequestPrompt {
        switch value {
        case .file(let data, let filename, let contentType):
            guard !data.isEmpty else { throw HTTPError(.badRequest, "field '\(name)' is empty") }
            if let format = ImageFormat.sniff(data) {
                return .image(ImagePrompt(data: data, format: format, filename: filename, contentType: contentType))
            }
            if name == "prompt", let text = String(validating: data, as: UTF8.self) {
                return try promptFromText(text, field: name)
            }
            throw HTTPError(.unprocessableContent, "field '\(name)' is not a PNG or JPEG image")
        case .text(let text):
            if name == "prompt_image_file" {
                do {
                    let (data, format) = try Base64Image.decode(text)
                    return .image(ImagePrompt(data: data, format: format))
                } catch let error as Base64ImageError {
                    throw httpError(error, field: name)
                }
            }
            return try promptFromText(text, field: name)
        }
    }

    private static func promptFromText(_ text: String, field: String) throws -> RequestPrompt {
        let content: PromptContent
        do {
            content = try Base64Image.classify(text)
        } catch let error as Base64ImageError {
            throw httpError(error, field: field)
        }
        switch content {
        case .image(let data, let format):
            return .image(ImagePrompt(data: data, format: format))
        case .text(let text):
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw HTTPError(.badRequest, "field '\(field)' is empty") }
            guard trimmed.utf8.count <= maxPromptBytes else {
                throw HTTPError(.badRequest, "field '\(field)' is longer than \(maxPromptBytes) bytes")
            }
            return .text(trimmed)
        }
    }

    private static func httpError(_ error: Base64ImageError, field: String) -> HTTPError {
        switch error {
        case .invalidBase64(let message): return HTTPError(.badRequest, "field '\(field)': \(message)")
        case .notAnImage(let message): return HTTPError(.unprocessableContent, "field '\(field)': \(message)")
        }
    }

    private static func parseSeed(_ text: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let seed = Int(trimmed) else {
            throw HTTPError(.badRequest, "field 'seed' must be an integer, got '\(trimmed.prefix(40))'")
        }
        return seed
    }

    // MARK: - JSON

    private static func decodeJSON(_ body: Data, requestID: String) throws -> GenerationRequest {
        try JSONBodyBounds.check(body)
        let decoded: JSONGenerationBody
        do {
            decoded = try JSONDecoder().decode(JSONGenerationBody.self, from: body)
        } catch let error as HTTPError {
            throw error
        } catch let error as DecodingError {
            throw HTTPError(.badRequest, describe(error))
        }
        let prompt: RequestPrompt
        switch (decoded.prompt, decoded.image) {
        case (.some, .some):
            throw HTTPError(.badRequest, "give either 'prompt' or 'image', not both")
        case (nil, nil):
            throw HTTPError(.badRequest, "missing field 'prompt' or 'image'")
        case (let text?, nil):
            prompt = try promptFromText(text, field: "prompt")
        case (nil, let image?):
            do {
                let (data, format) = try Base64Image.decode(image)
                prompt = .image(ImagePrompt(data: data, format: format))
            } catch let error as Base64ImageError {
                throw httpError(error, field: "image")
            }
        }
        return GenerationRequest(prompt: prompt, seed: decoded.seed, options: decoded.options ?? GenerationOptions(),
                                 route: .json, requestID: requestID)
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            let field = path(context)
            if field.isEmpty { return "body must be a JSON object" }
            return "field '\(field)' must be \(JSONGenerationBody.typeName(type))"
        case .valueNotFound(let type, let context):
            return "field '\(path(context))' must be \(JSONGenerationBody.typeName(type))"
        case .keyNotFound(let key, _):
            return "missing field '\(key.stringValue)'"
        case .dataCorrupted(let context):
            let field = path(context)
            if field.isEmpty { return "body is not valid JSON" }
            return "field '\(field)' is invalid: \(context.debugDescription)"
        @unknown default:
            return "body is not a valid generation request"
        }
    }
}

/// A JSON object key known only at run time, to find unknown fields.
struct AnyCodingKey: CodingKey {
    let stringValue: String
    let intValue: Int? = nil
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

private func rejectUnknownKeys(_ container: KeyedDecodingContainer<AnyCodingKey>, allowed: Set<String>,
                               prefix: String) throws {
    if let unknown = container.allKeys.map(\.stringValue).filter({ !allowed.contains($0) }).sorted().first {
        throw HTTPError(.badRequest, "unknown field '\(prefix)\(unknown)'")
    }
}

/// An optional integer field. Foundation reports 1.5 decoded as Int with an internal error that
/// surfaces as a path-less "not valid JSON", so a non-integral number is recognised and named here.
/// An explicit `null` is an error, not "absent": `"seed": null` must not quietly become a random seed.
private func decodeInteger(_ container: KeyedDecodingContainer<AnyCodingKey>, _ key: String,
                           field: String) throws -> Int? {
    if container.contains(AnyCodingKey(key)), try container.decodeNil(forKey: AnyCodingKey(key)) {
        throw HTTPError(.badRequest, "field '\(field)' must be an integer, not null")
    }
    do {
        return try container.decodeIfPresent(Int.self, forKey: AnyCodingKey(key))
    } catch {
        if (try? container.decodeIfPresent(Double.self, forKey: AnyCodingKey(key))) != nil {
            throw HTTPError(.badRequest, "field '\(field)' must be an integer")
        }
        throw error
    }
}

struct JSONGenerationBody: Decodable {
    var prompt: String?
    var image: String?
    var seed: Int?
    var options: GenerationOptions?

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try rejectUnknownKeys(container, allowed: ["prompt", "image", "seed", "options"], prefix: "")
        prompt = try container.decodeIfPresent(String.self, forKey: AnyCodingKey("prompt"))
        image = try container.decodeIfPresent(String.self, forKey: AnyCodingKey("image"))
        seed = try decodeInteger(container, "seed", field: "seed")
        options = try container.decodeIfPresent(GenerationOptions.self, forKey: AnyCodingKey("options"))
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default: return "a JSON object"
        }
    }
}

extension GenerationOptions: Decodable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        let keys = ["generator", "text_route", "preset", "image_steps", "structure_steps", "latent_steps", "guidance", "validate",
                    "min_score", "time_budget_s"]
        try rejectUnknownKeys(container, allowed: Set(keys), prefix: "options.")
        func value<T: Decodable>(_ key: String, _ type: T.Type) throws -> T? {
            try container.decodeIfPresent(type, forKey: AnyCodingKey(key))
        }
        func steps(_ key: String) throws -> Int? {
            guard let steps = try decodeInteger(container, key, field: "options.\(key)") else { return nil }
            let range = GaussianSettings.stepRange
            guard range.contains(steps) else {
                throw HTTPError(.badRequest, "field 'options.\(key)' must be between \(range.lowerBound) and \(range.upperBound), got \(steps)")
            }
            return steps
        }
        func name(_ key: String) throws -> String? {
            guard let text = try value(key, String.self) else { return nil }
            guard !text.isEmpty, text.count <= 64 else {
                throw HTTPError(.badRequest, "field 'options.\(key)' must be a non-empty name")
            }
            return text
        }
        self.init()
        generator = try name("generator")
        textRoute = try name("text_route")
        preset = try name("preset")
        imageSteps = try steps("image_steps")
        structureSteps = try steps("structure_steps")
        latentSteps = try steps("latent_steps")
        guidance = try value("guidance", Double.self)
        if let guidance, !(0...100).contains(guidance) {
            throw HTTPError(.badRequest, "field 'options.guidance' must be between 0 and 100")
        }
        validate = try value("validate", Bool.self)
        minScore = try value("min_score", Double.self)
        if let minScore, !(0...1).contains(minScore) {
            throw HTTPError(.badRequest, "field 'options.min_score' must be between 0 and 1")
        }
        timeBudget = try value("time_budget_s", Double.self)
        if let timeBudget, !(timeBudget > 0 && timeBudget <= 3600) {
            throw HTTPError(.badRequest, "field 'options.time_budget_s' must be in (0, 3600]")
        }
    }
}
