import ModelStore

/// The image -> 3D generators a daemon can load; requests and `--generator` name them by their raw values.
public enum GeneratorID: String, CaseIterable, Sendable, Comparable {
    case trellis
    case lgm

    public static func < (a: GeneratorID, b: GeneratorID) -> Bool { a.rawValue < b.rawValue }

    /// "trellis or lgm", for error messages.
    public static var choices: String { allCases.map(\.rawValue).joined(separator: " or ") }

    /// The generator called `name` (case-insensitive), or a bad-input error that lists the choices.
    public static func named(_ name: String) throws -> GeneratorID {
        guard let generator = GeneratorID(rawValue: name.lowercased()) else {
            throw PipelineError.badInput("unknown generator '\(name)' (\(choices))")
        }
        return generator
    }

    /// The generator a stage implements, from the stage's name ("smoke-trellis", "random-lgm", ...); nil when the
    /// name contains none.
    public static func of(_ stage: GaussianStage) -> GeneratorID? {
        let name = stage.name.lowercased()
        return allCases.first { name.contains($0.rawValue) }
    }

    /// The registry models its stages load: the image -> 3D network and its conditioning, and for LGM the MVDream
    /// text route.
    public var models: [ModelID] {
        switch self {
        case .trellis: return [.trellisImageLarge, .dinov2LargeReg]
        case .lgm: return [.lgm, .imagedream, .mvdream]
        }
    }

    /// How `PipelineAssembly.describe` names its image -> 3D stage.
    public var label: String {
        switch self {
        case .trellis: return "trellis-image-large"
        case .lgm: return "imagedream + lgm"
        }
    }
}

/// A part of the pipeline a job may need and not find loaded; `GenerationPipeline.missingAdvice` says, for each,
/// how to get it.
public enum MissingPart: Hashable, Sendable {
    case textToImage
    case backgroundRemoval
    case validation
    case generator(GeneratorID)
    /// The MVDream text route of LGM.
    case mvdreamRoute
}
