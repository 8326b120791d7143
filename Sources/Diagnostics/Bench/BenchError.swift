import Pipeline
import Foundation

/// Why a benchmark or readiness run could not start or could not write its output.
public enum BenchError: Error, Equatable, CustomStringConvertible {
    /// A prompt file that is missing or has a bad line.
    case promptFile(path: String, message: String)
    /// An image prompt that could not be read or decoded.
    case image(path: String, message: String)
    /// Neither text nor image prompts to run.
    case emptyPromptSet(String)
    case invalidArgument(String)
    /// A report file or folder that could not be written.
    case output(path: String, message: String)

    public var description: String {
        switch self {
        case let .promptFile(path, message): return "prompt file \(path): \(message)"
        case let .image(path, message): return "image prompt \(path): \(message)"
        case let .emptyPromptSet(message): return "no prompts: \(message)"
        case let .invalidArgument(message): return message
        case let .output(path, message): return "cannot write \(path): \(message)"
        }
    }
}
