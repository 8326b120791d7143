import Foundation

/// A shared secret every request must present, as `Authorization: Bearer KEY` or `X-API-Key: KEY`.
/// Compared in time that depends only on the key's length, never on how much of it a guess got right.
public struct APIKey: Sendable {
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Keys longer than this are refused: a key file is a token, not a document.
    public static let maxBytes = 4096

    private let bytes: [UInt8]

    /// `key`: visible ASCII (0x21...0x7E), at most `maxBytes`. Throws `LoadError` otherwise.
    public init(_ key: String) throws {
        let bytes = Array(key.utf8)
        guard !bytes.isEmpty else { throw LoadError(description: "the API key is empty") }
        guard bytes.count <= Self.maxBytes else {
            throw LoadError(description: "the API key is longer than \(Self.maxBytes) bytes")
        }
        guard bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw LoadError(description: "the API key may only hold visible ASCII characters (no spaces or control bytes)")
        }
        self.bytes = bytes
    }

    /// Reads the key from `path`: the file's text without surrounding whitespace (a trailing
    /// newline is fine). A missing, unreadable, empty or malformed file is an error naming the path.
    public static func load(fromFile path: String) throws -> APIKey {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw LoadError(description: "API key file \(path): no such file")
        }
        guard !isDirectory.boolValue else { throw LoadError(description: "API key file \(path): is a directory") }
        let data: Data
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            data = try handle.read(upToCount: maxBytes + 1024) ?? Data()
        } catch {
            throw LoadError(description: "API key file \(path): cannot be read (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw LoadError(description: "API key file \(path): not UTF-8 text")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            return try APIKey(key)
        } catch let error as LoadError {
            throw LoadError(description: "API key file \(path): \(error.description)")
        }
    }

    /// Whether `headers` carry this key, in `Authorization: Bearer` (scheme in any case) or `X-API-Key`.
    public func authorizes(_ headers: HTTPHeaders) -> Bool {
        var granted = false
        for value in headers.values("Authorization") {
            let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            if parts.count == 2, parts[0].lowercased() == "bearer",
               matches(parts[1].trimmingCharacters(in: .whitespaces)) {
                granted = true
            }
        }
        for value in headers.values("X-API-Key") where matches(value.trimmingCharacters(in: .whitespaces)) {
            granted = true
        }
        return granted
    }

    /// Whether the request presented any credential at all (to tell "missing" from "wrong").
    static func presentsCredential(_ headers: HTTPHeaders) -> Bool {
        headers.contains("Authorization") || headers.contains("X-API-Key")
    }

    /// Constant time in the candidate's content: every byte of the key is compared, whatever the
    /// candidate's length or where it first differs.
    public func matches(_ candidate: String) -> Bool {
        let given = Array(candidate.utf8)
        var difference: UInt8 = given.count == bytes.count ? 0 : 1
        for index in bytes.indices {
            let byte = index < given.count ? given[index] : 0
            difference |= bytes[index] ^ byte
        }
        return difference == 0
    }
}

/// Who may call which path: with a key configured, everything but `openPaths` needs it.
struct AccessPolicy {
    let key: APIKey?
    let openPaths: Set<String>

    /// The 401 to send instead of routing `request`, or nil when it may proceed.
    func denial(for request: HTTPRequest) -> HTTPResponse? {
        guard let key, !openPaths.contains(request.path), !key.authorizes(request.headers) else { return nil }
        if APIKey.presentsCredential(request.headers) {
            return .error(.unauthorized, "invalid API key",
                          headers: ["WWW-Authenticate": "Bearer error=\"invalid_token\""])
        }
        return .error(.unauthorized, "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                      headers: ["WWW-Authenticate": "Bearer"])
    }
}
