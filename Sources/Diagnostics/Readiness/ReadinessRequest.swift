import Pipeline
import Foundation
import HTTPServer

/// One request of the readiness check, as bytes ready to send to a subnet-17 route.
public struct ReadinessRequest: Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable {
        /// `POST /generate/`, form field `prompt` with text (the legacy miner protocol).
        case legacyText = "legacy text"
        /// `POST /generate/`, form field `prompt` with a base64 PNG.
        case legacyImage = "legacy base64 PNG"
        /// `POST /generate`, multipart `prompt_image_file` (JPEG) + `seed` (Competition 0).
        case competitionImage = "competition JPEG"
    }

    public var kind: Kind
    /// The prompt text or the image's file name, for messages.
    public var label: String
    /// The route, appended to the daemon URL's path.
    public var route: String
    public var contentType: String
    public var body: Data

    /// A text prompt through the legacy route, form-encoded as the subnet's validators send it.
    public static func legacyText(_ prompt: String) -> ReadinessRequest {
        ReadinessRequest(kind: .legacyText, label: prompt, route: "/generate/",
                         contentType: "application/x-www-form-urlencoded",
                         body: Data(FormURLEncoded.encode([("prompt", prompt)]).utf8))
    }

    /// A PNG image prompt through the legacy route: base64 in the `prompt` form field.
    public static func legacyImage(png: Data, name: String) -> ReadinessRequest {
        ReadinessRequest(kind: .legacyImage, label: name, route: "/generate/",
                         contentType: "application/x-www-form-urlencoded",
                         body: Data(FormURLEncoded.encode([("prompt", png.base64EncodedString())]).utf8))
    }

    /// A JPEG upload through the Competition-0 route, with a seed.
    public static func competitionImage(jpeg: Data, name: String, seed: Int) -> ReadinessRequest {
        var form = MultipartFormBody()
        form.addFile("prompt_image_file", filename: name, contentType: "image/jpeg", data: jpeg)
        form.addField("seed", String(seed))
        return ReadinessRequest(kind: .competitionImage, label: name, route: "/generate", contentType: form.contentType,
                                body: form.body)
    }
}
