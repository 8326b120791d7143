import Foundation
import PLY
import HTTPServer
import Pipeline
import Imaging

/// What the daemon has loaded, for /health and the start-up log.
public struct ServiceStatus {
    public var pipelineName: String
    /// True when the pipeline is the smoke pipeline of tiny random-weight networks (never real generation).
    public var isSmoke: Bool
    public var device: String
    /// Loaded stage -> the model's id (hub repository or "assets/smoke"): never a host path, /health is public.
    public var models: [String: Any]
    public var missing: [String]
    public var version: String
    /// The memory plan and each model's measured resident size.
    public var memory: [String: Any] = [:]

    public init(pipelineName: String, isSmoke: Bool, device: String, models: [String: Any], missing: [String],
                version: String, memory: [String: Any] = [:]) {
        self.pipelineName = pipelineName
        self.isSmoke = isSmoke
        self.device = device
        self.models = models
        self.missing = missing
        self.version = version
        self.memory = memory
    }
}

/// Serves the subnet APIs from one `PipelineWorker` per server worker (worker i runs `workers[i]`;
/// several workers may share a device, each with its own pipeline).
public final class PipelineService: GenerationService {
    private let workers: [PipelineWorker]
    private let status: ServiceStatus
    private let defaults: ServiceDefaults
    private let maxImagePixels: Int

    public struct ServiceDefaults {
        public var settings: GaussianSettings = .fast
        public var validate = true
        public var minScore = 0.6
        public var timeBudget = 25.0
        public var includeNormals = true

        public init() {}
    }

    public init(workers: [PipelineWorker], status: ServiceStatus, defaults: ServiceDefaults, maxImagePixels: Int = 4096 * 4096) {
        precondition(!workers.isEmpty)
        self.workers = workers
        self.status = status
        self.defaults = defaults
        self.maxImagePixels = maxImagePixels
    }

    public func health() -> [String: Any] {
        var h: [String: Any] = [
            "status": status.isSmoke ? "smoke" : "ok",
            "ready": true,
            "pipeline": status.pipelineName,
            "real_generation": !status.isSmoke,
            "device": status.device,
            "models": status.models,
            "generators": workers[0].pipeline.loadedGenerators.map(\.rawValue),
            "default_generator": workers[0].pipeline.defaultGenerator.rawValue,
            "text_routes": textRoutes(),
            "version": status.version,
            "memory": status.memory,
        ]
        if !status.missing.isEmpty { h["missing"] = status.missing }
        if status.isSmoke {
            h["warning"] = "random-weight networks (the tiny smoke ones, or real sizes for timing): output is NOT a real generation; "
                + "fetch the weights (see 'missing') and restart"
        }
        return h
    }

    /// Per loaded generator: the text routes it can take, the default first.
    private func textRoutes() -> [String: [String]] {
        let p = workers[0].pipeline
        var routes: [String: [String]] = [:]
        for g in p.loadedGenerators {
            var list = [TextRoute.flux.rawValue]
            if p.directText[g] != nil { list.insert(TextRoute.mvdream.rawValue, at: p.defaultTextRoute == .mvdream ? 0 : 1) }
            routes[g.rawValue] = list
        }
        return routes
    }

    public func generate(_ request: GenerationRequest, worker: Int) throws -> GenerationResult {
        try generate(request, worker: worker, cancellation: CancellationToken())
    }

    public func generate(_ request: GenerationRequest, worker: Int, cancellation: CancellationToken) throws
        -> GenerationResult {
        var job = try makeJob(request)
        job.cancellation = cancellation
        // A failure is a JobFailure already (PipelineWorker classifies what the stages throw).
        let outcome = try workers[worker].run(job)

        var headers = HTTPHeaders()
        headers.add("X-Pipeline", status.pipelineName)
        headers.add("X-Generator", outcome.generator.rawValue)
        if let route = outcome.textRoute { headers.add("X-Text-Route", route.rawValue) }
        headers.add("X-Gaussians", String(outcome.splat.count))
        headers.add("X-Seed", String(outcome.attempts.last?.seed ?? job.seed))
        headers.add("X-Attempts", String(outcome.attempts.count))
        if let v = outcome.verdict, let score = v.score {
            headers.add("X-Score", String(format: "%.4f", score))
            if let a = v.alignment { headers.add("X-CLIP-Score", String(format: "%.4f", a)) }
        }
        if let v = outcome.verdict, !v.passedChecks { headers.add("X-Validation-Checks", "failed") }
        if outcome.gated { headers.add("X-Validation-Failed", "true") }
        if status.isSmoke { headers.add("X-Smoke-Pipeline", "true") }
        let timings = outcome.timings.entries.map { StageTiming($0.name, seconds: $0.seconds) }
        return GenerationResult(body: outcome.ply, headers: headers, stageTimings: timings)
    }

    private func makeJob(_ request: GenerationRequest) throws -> GenerationJob {
        let prompt: Prompt
        switch request.prompt {
        case .text(let text):
            // Trimmed and checked non-empty by GenerationRequestDecoder.
            prompt = .text(text)
        case .image(let image):
            do {
                prompt = .image(try ImageDecoder.decode(image.data, maxPixels: maxImagePixels))
            } catch {
                throw JobFailure.unprocessable("the image prompt could not be decoded: \(error)")
            }
        }
        let o = request.options
        var settings = defaults.settings
        if let preset = o.preset {
            guard let p = GaussianSettings.preset(preset) else {
                throw JobFailure.badInput("unknown preset '\(preset)' (use fast or quality)")
            }
            settings = p
        }
        if let s = o.structureSteps { settings.structureSteps = s }
        if let s = o.latentSteps { settings.latentSteps = s }
        if let g = o.guidance { settings.structureGuidance = g }
        // The generator's name is checked where the job resolves it (GenerationPipeline.resolve: 400 unknown, 503 not loaded).
        var textRoute: TextRoute? = nil
        if let r = o.textRoute {
            guard let route = TextRoute(rawValue: r.lowercased()) else {
                throw JobFailure.badInput("unknown text_route '\(r)' (flux or mvdream)")
            }
            textRoute = route
        }
        // Competition 0 renders -Y up (TRELLIS convention); the legacy validators render +Y up.
        let orientation: SplatOrientation = request.route == .legacy ? .yUp : .yDown
        let seed = request.seed.map { UInt64(truncatingIfNeeded: $0) } ?? UInt64.random(in: 0..<(1 << 31))
        return GenerationJob(prompt: prompt, seed: seed, settings: settings,
                             output: SplatOutputOptions(orientation: orientation, includeNormals: defaults.includeNormals),
                             validate: o.validate ?? defaults.validate, minScore: o.minScore ?? defaults.minScore,
                             timeBudget: o.timeBudget ?? defaults.timeBudget, generator: o.generator,
                             textRoute: textRoute, imageSteps: o.imageSteps)
    }
}

extension CancellationToken: CancellationSignal {}
