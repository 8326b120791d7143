import Foundation
import HTTPServer
import Pipeline

/// Which endpoint a generation request came through. Legacy and Competition 0 differ in what
/// the caller expects (e.g. the camera convention of the PLY), so the service may branch on it.
public enum GenerationRoute: String, Sendable, Equatable {
    /// `POST /generate/` with a form field `prompt` (subnet 17 miner protocol).
    case legacy
    /// `POST /generate` with multipart `prompt_image_file` and `seed` (Competition 0).
    case competition
    /// Either path with an `application/json` body (scripts, benchmarks).
    case json
}

/// An image prompt as received: the file bytes (already base64-decoded), not decoded pixels.
public struct ImagePrompt: Sendable, Equatable {
    public var data: Data
    public var format: ImageFormat
    /// The multipart filename, when the image came as a file part.
    public var filename: String?
    /// The multipart part's Content-Type, when sent.
    public var contentType: String?

    public init(data: Data, format: ImageFormat, filename: String? = nil, contentType: String? = nil) {
        self.data = data
        self.format = format
        self.filename = filename
        self.contentType = contentType
    }
}

/// The prompt as the request carried it: text, or the image file's bytes not yet decoded (`PipelineService` decodes
/// them into the pipeline's `Prompt`).
public enum RequestPrompt: Sendable, Equatable {
    /// Text-to-3D.
    case text(String)
    /// Image-to-3D.
    case image(ImagePrompt)
}

/// Per-request overrides (JSON route only). Every field is optional; nil means the service's
/// default. The service validates names (generator, preset) and throws `.badInput` for unknown ones.
public struct GenerationOptions: Sendable, Equatable {
    /// Gaussian generator, e.g. "trellis" or "lgm".                    JSON: `generator`
    public var generator: String?
    /// How a text prompt reaches the generator: "flux" or "mvdream" (LGM). JSON: `text_route`
    public var textRoute: String?
    /// Named speed/quality preset, e.g. "fast", "default", "quality". JSON: `preset`
    public var preset: String?
    /// Text-to-image sampling steps.                                    JSON: `image_steps`
    public var imageSteps: Int?
    /// TRELLIS sparse-structure flow steps.                             JSON: `structure_steps`
    public var structureSteps: Int?
    /// TRELLIS structured-latent flow steps.                            JSON: `latent_steps`
    public var latentSteps: Int?
    /// Classifier-free guidance strength.                               JSON: `guidance`
    public var guidance: Double?
    /// Run the validation gate (render + score) before answering.       JSON: `validate`
    public var validate: Bool?
    /// Gate threshold: below it the answer is an empty body.            JSON: `min_score`
    public var minScore: Double?
    /// Wall-clock budget for the whole job, seconds.                    JSON: `time_budget_s`
    public var timeBudget: Double?

    public init(generator: String? = nil, preset: String? = nil, imageSteps: Int? = nil, structureSteps: Int? = nil,
                latentSteps: Int? = nil, guidance: Double? = nil, validate: Bool? = nil, minScore: Double? = nil,
                timeBudget: Double? = nil) {
        self.generator = generator
        self.preset = preset
        self.imageSteps = imageSteps
        self.structureSteps = structureSteps
        self.latentSteps = latentSteps
        self.guidance = guidance
        self.validate = validate
        self.minScore = minScore
        self.timeBudget = timeBudget
    }
}

public struct GenerationRequest: Sendable, Equatable {
    public var prompt: RequestPrompt
    public var seed: Int?
    public var options: GenerationOptions
    public var route: GenerationRoute
    /// The id that appears in the request log line and the `X-Request-Id` response header.
    public var requestID: String

    public init(prompt: RequestPrompt, seed: Int? = nil, options: GenerationOptions = GenerationOptions(),
                route: GenerationRoute, requestID: String) {
        self.prompt = prompt
        self.seed = seed
        self.options = options
        self.route = route
        self.requestID = requestID
    }
}

/// A 200 answer: the PLY bytes (or an empty body when the validation gate says "skip"), extra
/// headers (`X-Validation-Failed`, `X-Score`, ...) and stage timings for the request log.
public struct GenerationResult: Sendable {
    public var body: Data
    public var contentType: String
    public var headers: HTTPHeaders
    public var stageTimings: [StageTiming]

    public init(body: Data, contentType: String = "application/octet-stream", headers: HTTPHeaders = HTTPHeaders(),
                stageTimings: [StageTiming] = []) {
        self.body = body
        self.contentType = contentType
        self.headers = headers
        self.stageTimings = stageTimings
    }
}

/// How a failed job is answered: the one place where a `JobFailure` (the pipeline's one failure type, which the
/// service's own checks throw too) becomes an HTTP status and message. Each fails only its own request.
extension JobFailure {
    public var status: HTTPStatus {
        switch self {
        case .badInput: return .badRequest
        case .unprocessable: return .unprocessableContent
        // No model for a stage the job needs, the device out of memory, or a job stopped because its client left
        // (nobody reads that answer; 503 in case someone does). All three come with Retry-After.
        case .missingStage, .outOfMemory, .cancelled: return .serviceUnavailable
        case .internal: return .internalServerError
        }
    }

    /// The `error` text of the JSON answer.
    public var answer: String {
        switch self {
        case .badInput(let message), .unprocessable(let message): return message
        case .missingStage(let message): return "service unavailable: \(message)"
        case .outOfMemory(let message): return "out of device memory: \(message)"
        case .internal(let message): return "generation failed: \(message)"
        case .cancelled(let message): return "job stopped: \(message)"
        }
    }
}

/// What the HTTP layer needs from the generation pipeline.
public protocol GenerationService: AnyObject {
    /// Status for `GET /health`: JSON-compatible values only (String, numbers, Bool, arrays,
    /// dictionaries). Suggested keys: `status`, `version`, `device`, `models` (name -> "loaded" /
    /// "missing"). `"ready": false` makes /health answer 503. Called from connection queues
    /// concurrently with `generate`, so it must be thread-safe and quick.
    func health() -> [String: Any]

    /// Runs one job on worker `worker` (an index into the server's workers; several workers may
    /// share a device). Called on that worker's own thread, one call at a time per worker, while
    /// other workers run their own jobs. Throw `JobFailure` to choose the HTTP status; a
    /// thrown error fails this request only, so leave the worker able to take its next job.
    func generate(_ request: GenerationRequest, worker: Int) throws -> GenerationResult

    /// The same, for a job that should stop at its next stage boundary once `cancellation` fires
    /// (throw `JobFailure.cancelled` then). The default ignores the token.
    func generate(_ request: GenerationRequest, worker: Int, cancellation: CancellationToken) throws
        -> GenerationResult
}

extension GenerationService {
    public func generate(_ request: GenerationRequest, worker: Int, cancellation: CancellationToken) throws
        -> GenerationResult {
        try generate(request, worker: worker)
    }
}
