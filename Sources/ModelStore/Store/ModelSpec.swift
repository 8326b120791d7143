/// Which set of models a command works on.
public enum PipelineName: String, CaseIterable, Sendable, Codable {
    /// text/image -> FLUX.1-schnell -> BiRefNet -> TRELLIS (+ DINOv2-L-reg) -> validator scorers.
    case `default`
    /// Everything in the registry, including the LGM path and SD3.5.
    case all
}

/// How one registry entry names the files it needs from its repository.
public enum FileSpec: Hashable, Sendable, CustomStringConvertible {
    /// Exactly this path.
    case file(String)
    /// Every file whose path matches this fnmatch(3) pattern (`*` also crosses `/`, like huggingface_hub's
    /// allow_patterns). Must match at least one file.
    case glob(String)
    /// The first of these paths that the repository has (a preference order, e.g. safetensors before a pickle).
    case firstOf([String])

    public var description: String {
        switch self {
        case .file(let path): return path
        case .glob(let pattern): return pattern
        case .firstOf(let paths): return paths.joined(separator: " | ")
        }
    }
}

/// Whether the hub lets anyone download the files.
public enum Gating: Equatable, Sendable, Codable {
    case open
    /// Downloads need a token of an account that accepted the terms; the text says how access is granted.
    case gated(String)

    public var isGated: Bool {
        if case .gated = self { return true }
        return false
    }
}

/// A licence as far as it could be checked.
public struct LicenceInfo: Equatable, Sendable, Codable {
    /// SPDX-like name ("MIT", "Apache-2.0") or the licence's own name.
    public let name: String
    /// True when `source` is a model card or repository file that states this licence for these weights.
    public let verified: Bool
    /// Where the name comes from, or why it is unverified.
    public let source: String

    public var displayName: String { verified ? name : "\(name) (unverified)" }
}

/// Storage type of weights held on the GPU.
public enum WeightDType: String, Sendable, Codable {
    case fp32, fp16, bf16

    public var byteSize: Int64 {
        switch self {
        case .fp32: return 4
        case .fp16, .bf16: return 2
        }
    }
}

/// One separately loadable network of a model, for the GPU memory plan.
public struct WeightComponent: Equatable, Sendable, Codable {
    public let name: String
    /// Parameter count (exact where a manifest in shared/fixtures gives it, else approximate).
    public let parameters: Int64
    /// The dtype the reference implementation holds these weights in on the GPU.
    public let gpuDType: WeightDType

    public var gpuBytes: Int64 { parameters * gpuDType.byteSize }
}

/// One registry entry: a hub repository, the files a pipeline needs from it, and what we know about it.
public struct ModelSpec: Equatable, Sendable {
    /// Short name used on the command line (`gen3d fetch --model NAME`).
    public let name: String
    /// Hub repository id, "ORG/NAME".
    public let repo: String
    /// A 40-hex commit for a pinned entry; a branch name ("main") for an unpinned one.
    public let revision: String
    public let files: [FileSpec]
    /// What the pipeline uses it for.
    public let purpose: String
    public let licence: LicenceInfo
    public let gating: Gating
    /// Approximate total size of the selected files (metadata only; never used for verification).
    public let approxDownloadBytes: Int64
    /// Networks and their parameter counts, the basis of the GPU memory plan.
    public let components: [WeightComponent]
    /// True when the default pipeline needs it; every entry belongs to `.all`.
    public let inDefaultPipeline: Bool
    /// Caveats: unverified file names, known differences from the issue text.
    public let note: String?

    /// True when `revision` is a commit hash (the files can never change under us).
    public var isPinned: Bool { HFCache.isCommitHash(revision) }

    /// Bytes of all components' weights on the GPU.
    public var approxGPUWeightBytes: Int64 { components.reduce(0) { $0 + $1.gpuBytes } }

    public init(name: String, repo: String, revision: String, files: [FileSpec], purpose: String,
                licence: LicenceInfo, gating: Gating, approxDownloadBytes: Int64,
                components: [WeightComponent], inDefaultPipeline: Bool, note: String? = nil) {
        self.name = name
        self.repo = repo
        self.revision = revision
        self.files = files
        self.purpose = purpose
        self.licence = licence
        self.gating = gating
        self.approxDownloadBytes = approxDownloadBytes
        self.components = components
        self.inDefaultPipeline = inDefaultPipeline
        self.note = note
    }
}
