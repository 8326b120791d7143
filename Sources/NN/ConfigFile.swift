import Foundation

/// A model configuration file (a checkpoint's `config.json`, a TRELLIS `<ckpt>.json`, a scheduler or processor
/// config) that could not be read or does not describe a valid configuration.
public struct ConfigFileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "config file \(path): \(reason)" }
}

/// Reads configuration JSON so that every failure names the file it came from.
public enum ConfigFile {
    /// The file's bytes.
    public static func data(_ url: URL) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ConfigFileError(path: url.path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw ConfigFileError(path: url.path, reason: "is a directory, not a file") }
        do { return try Data(contentsOf: url) } catch {
            throw ConfigFileError(path: url.path, reason: "cannot read (\(error.localizedDescription))")
        }
    }

    /// The file decoded as `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data = try data(url)
        return try decoding(url) { try JSONDecoder().decode(T.self, from: data) }
    }

    /// The file's top-level JSON object.
    public static func object(_ url: URL) throws -> [String: Any] {
        let data = try data(url)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigFileError(path: url.path, reason: "not JSON (\(error.localizedDescription))")
        }
        guard let object = json as? [String: Any] else { throw ConfigFileError(path: url.path, reason: "not a JSON object") }
        return object
    }

    /// Runs `body` (which decodes values that came from `url`), naming the file in a decoding error.
    public static func decoding<T>(_ url: URL, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as DecodingError {
            throw ConfigFileError(path: url.path, reason: describe(error))
        }
    }

    /// One line for a `DecodingError`: what was wrong and where (the coding path).
    public static func describe(_ error: DecodingError) -> String {
        func at(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "" : " at '\(path)'"
        }
        switch error {
        case let .typeMismatch(type, context): return "expected \(type)\(at(context)): \(context.debugDescription)"
        case let .valueNotFound(type, context): return "missing \(type) value\(at(context)): \(context.debugDescription)"
        case let .keyNotFound(key, context): return "missing key '\(key.stringValue)'\(at(context))"
        case let .dataCorrupted(context): return "invalid data\(at(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
