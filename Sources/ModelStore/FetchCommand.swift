import Foundation

/// The flags of `gen3d fetch`, one field per flag:
///
///     gen3d fetch [--pipeline default|all] [--model NAME...]
///     gen3d fetch --repo ORG/NAME [--revision REV] [--include GLOB...] [--dest DIR]
///     common: [--dest DIR] [--models-dir DIR...] [--offline] [--jobs N] [--progress auto|bar|lines|quiet]
///
/// With neither --pipeline, --model nor --repo, the default pipeline is fetched.
public struct FetchOptions: Sendable, Equatable {
    public var pipeline: PipelineName?
    /// Registry short names (or repo ids of registry entries).
    public var models: [String] = []
    /// An arbitrary hub repository, instead of registry models.
    public var repo: String?
    /// Revision of `repo` (branch, tag or commit); default "main".
    public var revision: String?
    /// Globs selecting files of `repo`; default every file.
    public var includes: [String] = []
    /// Plain folder instead of the hub cache.
    public var dest: String?
    /// Folders searched for already-present models (`<dir>/ORG/NAME` or `<dir>/NAME`).
    public var modelsDirs: [String] = []
    /// Never touch the network (also HF_HUB_OFFLINE=1).
    public var offline = false
    /// Files downloaded at once (default 4).
    public var jobs: Int?
    public var progress: ProgressStyle = .auto

    public init() {}
}

/// `gen3d fetch`: the CLI calls `run` with the parsed flags.
public enum FetchCommand {
    /// Fetches what the options select, printing licence/gating and progress to `output`
    /// (stderr by default). Throws `ModelStoreError` with a message meant for the user.
    @discardableResult
    public static func run(_ options: FetchOptions,
                           environment: [String: String] = ProcessInfo.processInfo.environment,
                           output: @escaping @Sendable (String) -> Void = StandardError.write) async throws -> FetchReport {
        let targets = try targets(for: options)
        var hub = HubConfiguration.fromEnvironment(environment)
        if options.offline { hub.offline = true }
        if let jobs = options.jobs {
            guard jobs >= 1, jobs <= 64 else { throw ModelStoreError.invalidOptions("--jobs must be between 1 and 64, got \(jobs)") }
            hub.parallelDownloads = jobs
        }
        let store = ModelStore(hub: hub, modelsDirectories: options.modelsDirs.map(absolutePath))
        let destination: FetchDestination = options.dest.map { .folder(absolutePath($0)) } ?? .hubCache
        let reporter = ProgressReporter(mode: ProgressReporter.mode(for: options.progress), output: output,
                                        terminalWidth: terminalColumns)
        let cancellation = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<FetchReport, Error>) in
                // Blocking libcurl work stays off the cooperative thread pool.
                let thread = Thread {
                    do {
                        continuation.resume(returning: try store.fetch(targets, destination: destination,
                                                                       reporter: reporter, cancellation: cancellation))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.name = "gen3d-fetch"
                thread.start()
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// The repositories the options select, validated.
    public static func targets(for options: FetchOptions) throws -> [FetchTarget] {
        if let repo = options.repo {
            guard options.pipeline == nil, options.models.isEmpty else {
                throw ModelStoreError.invalidOptions("--repo cannot be combined with --pipeline or --model")
            }
            guard HubURL.isValidRepoID(repo) else {
                throw ModelStoreError.invalidOptions("--repo wants ORG/NAME, got '\(repo)'")
            }
            let revision = options.revision ?? "main"
            guard !revision.isEmpty, !revision.contains(".."), !revision.hasPrefix("/") else {
                throw ModelStoreError.invalidOptions("invalid --revision '\(revision)'")
            }
            guard options.includes.allSatisfy({ !$0.isEmpty }) else {
                throw ModelStoreError.invalidOptions("--include needs a non-empty glob")
            }
            return [FetchTarget(repo: repo, revision: revision, includes: options.includes)]
        }
        guard options.revision == nil, options.includes.isEmpty else {
            throw ModelStoreError.invalidOptions("--revision and --include only apply to --repo (registry models have pinned files)")
        }
        var specs: [ModelSpec] = []
        if let pipeline = options.pipeline { specs += ModelRegistry.models(for: pipeline) }
        for name in options.models {
            guard let spec = ModelRegistry.model(named: name) else {
                throw ModelStoreError.unknownModel(name: name, known: ModelRegistry.names)
            }
            specs.append(spec)
        }
        if options.pipeline == nil, options.models.isEmpty { specs = ModelRegistry.models(for: .default) }
        var seen = Set<String>()
        return specs.filter { seen.insert($0.name).inserted }.map(FetchTarget.init(spec:))
    }

    private static func absolutePath(_ path: String) -> String {
        var expanded = (path as NSString).expandingTildeInPath
        if !expanded.hasPrefix("/") { expanded = FileManager.default.currentDirectoryPath + "/" + expanded }
        while expanded.count > 1, expanded.hasSuffix("/") { expanded.removeLast() }
        return expanded
    }
}

/// Unbuffered writes to the process's stderr.
public enum StandardError {
    @Sendable public static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
