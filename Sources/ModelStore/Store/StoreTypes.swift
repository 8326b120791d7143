/// A repository to fetch: a registry entry, or an ad-hoc `fetch --repo`.
public struct FetchTarget: Sendable, Equatable {
    /// Registry short name, or the repo id for an ad-hoc target.
    public let name: String
    public let repo: String
    public let revision: String
    public let files: [FileSpec]
    /// The registry entry, nil for an ad-hoc target.
    public let spec: ModelSpec?

    public init(spec: ModelSpec) {
        name = spec.name
        repo = spec.repo
        revision = spec.revision
        files = spec.files
        self.spec = spec
    }

    /// An ad-hoc repository; no include globs means every file.
    public init(repo: String, revision: String = "main", includes: [String] = []) {
        name = repo
        self.repo = repo
        self.revision = revision
        files = includes.isEmpty ? [.glob("*")] : includes.map { FileSpec.glob($0) }
        spec = nil
    }
}

/// Where downloads go.
public enum FetchDestination: Sendable, Equatable {
    /// The huggingface_hub cache layout (blobs + snapshot symlinks), shared with Python tools.
    case hubCache
    /// A plain folder. Registry models go in `<folder>/ORG/NAME`; an ad-hoc `--repo` fetch writes into
    /// the folder itself.
    case folder(String)
}

/// Where a model's files were found.
public struct ModelLocation: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        case hubCache
        case folder
    }

    public let kind: Kind
    /// The folder holding the repository's files (a snapshot folder for the hub cache).
    public let path: String
    /// The snapshot's commit (hub cache only).
    public let commit: String?

    /// Absolute path of a repository file inside this location.
    public func path(of file: String) -> String {
        path + "/" + file
    }
}

/// What `ModelStore.check` says about one model.
public struct ModelStatus: Sendable, Equatable, Codable {
    public let name: String
    public let repo: String
    public let revision: String
    public let pinned: Bool
    public let present: Bool
    /// The folder used in place, when present.
    public let location: ModelLocation?
    /// File specs (or index-listed shards) not found locally, when missing.
    public let missing: [String]
    /// The exact command that fetches it, when missing.
    public let fetchCommand: String?
    public let licence: String
    public let gated: Bool
    public let approxDownloadBytes: Int64

    /// One line for logs: "present flux1-schnell at /path" or "missing ... run: gen3d fetch --model ...".
    public var summary: String {
        if present, let location { return "present  \(name) (\(repo)) at \(location.path)" }
        let gate = gated ? ", gated: needs HF_TOKEN" : ""
        return "missing  \(name) (\(repo), ~\(ProgressReporter.formatBytes(approxDownloadBytes))\(gate)): "
            + "run `\(fetchCommand ?? "gen3d fetch --model \(name)")`"
    }
}

/// `ModelStore.check` over a set of models: what the daemon logs at start-up and reports in /health.
public struct StoreReport: Sendable, Equatable, Codable {
    public let pipeline: String?
    public let models: [ModelStatus]

    public var ready: Bool { models.allSatisfy(\.present) }
    public var missing: [ModelStatus] { models.filter { !$0.present } }

    public var summary: String {
        models.map(\.summary).joined(separator: "\n")
    }
}

/// What a fetch did.
public struct FetchReport: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let repo: String
        public let location: ModelLocation
        /// True when nothing had to be fetched (found locally without touching the network).
        public let alreadyPresent: Bool
        /// Files transferred (or copied from the cache) and their total size.
        public let fetchedFiles: Int
        public let fetchedBytes: Int64
    }

    public var entries: [Entry] = []

    public var fetchedBytes: Int64 { entries.reduce(0) { $0 + $1.fetchedBytes } }
}
