import Foundation

/// A text tokenizer: text in, token ids out.
///
/// `encode(_:)` returns the ids the reference library returns for one text with its special tokens added
/// (CLIP: `<start>` ... `<end>`, T5: ... `</s>`), neither truncated nor padded. The concrete types add a
/// fixed-length, truncated and padded variant (`encode(_:contextLength:)`, `encode(_:maxLength:)`).
public protocol TextTokenizer: Sendable {
    func encode(_ text: String) -> [Int]
}

/// Why a tokenizer could not be loaded or could not encode.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// A file could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file was read but its contents are not what the format requires.
    case malformed(what: String, reason: String)
    /// A component or option of a tokenizer file that this library does not implement.
    case unsupported(what: String)
    /// A token the configuration names is not in the vocabulary.
    case missingToken(String)
    /// A fixed output length that cannot hold the required special tokens.
    case invalidLength(name: String, value: Int, minimum: Int)
    /// Any of the above, about the tokenizer files at `paths` (one file, or files read together).
    indirect case inFiles([String], TokenizerError)

    public var description: String {
        switch self {
        case let .inFiles(paths, error):
            return "tokenizer file\(paths.count == 1 ? "" : "s") \(paths.joined(separator: ", ")): \(error)"
        case let .unreadableFile(path, reason):
            return "cannot read \(path): \(reason)"
        case let .malformed(what, reason):
            return "malformed \(what): \(reason)"
        case let .unsupported(what):
            return "unsupported tokenizer component: \(what)"
        case let .missingToken(token):
            return "token \(token.debugDescription) is not in the vocabulary"
        case let .invalidLength(name, value, minimum):
            return "\(name) must be at least \(minimum), got \(value)"
        }
    }
}

extension TokenizerError {
    /// The error without the names of the files it came from.
    public var withoutFiles: TokenizerError {
        if case let .inFiles(_, error) = self { return error.withoutFiles }
        return self
    }
}

extension TokenizerError: LocalizedError {
    public var errorDescription: String? { description }
}

/// Reads a whole file, mapping failures to `TokenizerError.unreadableFile`.
func readFile(_ url: URL) throws -> Data {
    do {
        return try Data(contentsOf: url)
    } catch {
        throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
    }
}

/// Parses a JSON file, mapping failures to `TokenizerError`.
func readJSON(_ url: URL) throws -> Any {
    let data = try readFile(url)
    do {
        return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    } catch {
        throw TokenizerError.malformed(what: url.lastPathComponent, reason: "not JSON (\(error.localizedDescription))")
    }
}
