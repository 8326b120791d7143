import Foundation

/// Every failure of the model store, with a message a user can act on.
public enum ModelStoreError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The hub refused access (HTTP 401/403), typically a gated repository.
    case accessDenied(repo: String, file: String?, status: Int, tokenSent: Bool, serverMessage: String?)
    /// A repository, revision or file does not exist on the hub.
    case notFound(repo: String, revision: String, file: String?, serverMessage: String?)
    /// Any other unexpected HTTP status.
    case httpStatus(url: String, status: Int, serverMessage: String?)
    /// libcurl could not complete the transfer (DNS, connection, TLS, cut transfer after all retries...).
    case transport(url: String, code: Int, message: String)
    /// A downloaded file's content does not hash to what the hub lists. The file was deleted.
    case checksumMismatch(repo: String, file: String, expected: String, actual: String)
    /// A downloaded file has the wrong size. The file was deleted.
    case sizeMismatch(repo: String, file: String, expected: Int64, actual: Int64)
    /// The hub answered with something that is not what the API documents.
    case invalidResponse(url: String, reason: String)
    /// Offline mode (HF_HUB_OFFLINE=1 or --offline) and files are missing locally.
    case offlineMissing([String])
    /// A registry pattern or --include glob matched no file of the repository.
    case noMatchingFiles(repo: String, revision: String, patterns: [String])
    /// A model the pipeline needs is not on disk.
    case modelMissing(name: String, repo: String, missing: [String], fetchCommand: String)
    /// A model folder holds a directory where one of the model's files belongs (full paths).
    case directoryInPlaceOfFile(model: String, paths: [String])
    /// A model name given by the user is not in the registry.
    case unknownModel(name: String, known: [String])
    /// Options that do not make sense together, or malformed values.
    case invalidOptions(String)
    /// A file-system operation failed.
    case fileSystem(path: String, reason: String)
    /// The fetch was cancelled.
    case cancelled
    /// Several files failed; each error is kept.
    case multiple([ModelStoreError])

    public var description: String {
        switch self {
        case let .accessDenied(repo, file, status, tokenSent, serverMessage):
            let what = file.map { "\(repo)/\($0)" } ?? repo
            var text = "access to \(what) was refused (HTTP \(status)). "
            if tokenSent {
                text += "A Hugging Face token was sent but does not grant access: accept the licence on "
                    + "https://huggingface.co/\(repo) with the account that owns the token (gated repos "
                    + "may need approval), or check that the token has read access."
            } else {
                text += "This repository is gated or private: accept its licence on https://huggingface.co/\(repo), "
                    + "then set HF_TOKEN or save the token to ~/.cache/huggingface/token ($HF_HOME/token)."
            }
            if let serverMessage, !serverMessage.isEmpty { text += " Hub says: \(serverMessage)" }
            return text
        case let .notFound(repo, revision, file, serverMessage):
            var text: String
            if let file {
                text = "file \(file) not found in \(repo) at revision \(revision)"
            } else {
                text = "repository \(repo) or revision \(revision) not found on the hub "
                    + "(a private repository looks the same without a token)"
            }
            if let serverMessage, !serverMessage.isEmpty { text += ": \(serverMessage)" }
            return text
        case let .httpStatus(url, status, serverMessage):
            var text = "HTTP \(status) from \(url)"
            if let serverMessage, !serverMessage.isEmpty { text += ": \(serverMessage)" }
            return text
        case let .transport(url, code, message):
            return "download of \(url) failed: \(message) (curl error \(code))"
        case let .checksumMismatch(repo, file, expected, actual):
            return "\(repo)/\(file): content hash \(actual) does not match the hub's \(expected); "
                + "the file was deleted, run the fetch again"
        case let .sizeMismatch(repo, file, expected, actual):
            return "\(repo)/\(file): got \(actual) bytes, the hub lists \(expected); the file was deleted, run the fetch again"
        case let .invalidResponse(url, reason):
            return "unexpected answer from \(url): \(reason)"
        case let .offlineMissing(missing):
            return "offline mode (HF_HUB_OFFLINE or --offline): not touching the network, and these are missing locally:\n  "
                + missing.joined(separator: "\n  ")
        case let .noMatchingFiles(repo, revision, patterns):
            return "no file of \(repo) at \(revision) matches \(patterns.joined(separator: ", "))"
        case let .modelMissing(name, repo, missing, fetchCommand):
            return "model \(name) (\(repo)) is not on disk (missing: \(missing.joined(separator: ", "))); "
                + "run `\(fetchCommand)`"
        case let .directoryInPlaceOfFile(model, paths):
            return "model \(model): \(paths.joined(separator: ", ")) \(paths.count == 1 ? "is a directory" : "are directories") "
                + "where a file belongs; remove \(paths.count == 1 ? "it" : "them") and fetch again (`gen3d fetch --model \(model)`)"
        case let .unknownModel(name, known):
            return "unknown model '\(name)'; known models: \(known.joined(separator: ", "))"
        case let .invalidOptions(message):
            return message
        case let .fileSystem(path, reason):
            return "\(path): \(reason)"
        case .cancelled:
            return "fetch cancelled"
        case let .multiple(errors):
            return "\(errors.count) downloads failed:\n  " + errors.map(\.description).joined(separator: "\n  ")
        }
    }

    public var errorDescription: String? { description }
}
