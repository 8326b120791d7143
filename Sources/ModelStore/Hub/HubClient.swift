import CCurl
import Foundation

/// One file of a repository as the hub lists it.
public struct RemoteFile: Equatable, Sendable {
    public let path: String
    public let size: Int64
    public let digest: ContentDigest

    /// The blob name huggingface_hub gives it in the cache (its ETag): the LFS sha256 or the git blob id.
    public var blobName: String { digest.hex }
}

/// What the hub says about a repository at a revision.
public struct RepoInfo: Equatable, Sendable {
    /// The commit the revision resolves to.
    public let commit: String
    /// "auto" or "manual" for gated repositories, nil when open.
    public let gated: String?
    /// The licence of the model card metadata, if any.
    public let licence: String?
}

/// The hub's JSON API over libcurl: revision resolution and file listing.
/// Downloads themselves go through `FileDownload`.
public final class HubClient {
    public let configuration: HubConfiguration
    private let cancellation: CancellationFlag
    private lazy var easy: CurlEasy? = try? CurlEasy()

    init(configuration: HubConfiguration, cancellation: CancellationFlag = CancellationFlag()) {
        self.configuration = configuration
        self.cancellation = cancellation
    }

    public convenience init(configuration: HubConfiguration) {
        self.init(configuration: configuration, cancellation: CancellationFlag())
    }

    /// `GET <endpoint>/api/models/<repo>/revision/<revision>`: the commit, gating and licence.
    public func repoInfo(repo: String, revision: String) throws -> RepoInfo {
        let url = configuration.endpoint + "/api/models/" + repo + "/revision/" + HubURL.encodeComponent(revision)
        let response = try getJSON(url: url, repo: repo, revision: revision)
        guard let object = response.json as? [String: Any] else {
            throw ModelStoreError.invalidResponse(url: url, reason: "expected a JSON object")
        }
        guard let sha = object["sha"] as? String, HFCache.isCommitHash(sha) else {
            throw ModelStoreError.invalidResponse(url: url, reason: "no 40-hex 'sha' field")
        }
        var gated: String?
        if let value = object["gated"] as? String { gated = value }
        if let value = object["gated"] as? Bool, value { gated = "true" }
        var licence: String?
        if let card = object["cardData"] as? [String: Any] {
            licence = card["license"] as? String ?? (card["license"] as? [String])?.joined(separator: ", ")
        }
        return RepoInfo(commit: sha, gated: gated, licence: licence)
    }

    /// `GET <endpoint>/api/models/<repo>/tree/<revision>?recursive=true`, following `Link: rel="next"`
    /// pages: every file with its size and LFS sha256 or git blob id.
    public func listFiles(repo: String, revision: String) throws -> [RemoteFile] {
        var next: String? = configuration.endpoint + "/api/models/" + repo + "/tree/"
            + HubURL.encodeComponent(revision) + "?recursive=true"
        var files: [RemoteFile] = []
        var pages = 0
        while let url = next {
            pages += 1
            if pages > 10_000 { throw ModelStoreError.invalidResponse(url: url, reason: "endless pagination") }
            let response = try getJSON(url: url, repo: repo, revision: revision)
            guard let entries = response.json as? [[String: Any]] else {
                throw ModelStoreError.invalidResponse(url: url, reason: "expected a JSON array of tree entries")
            }
            for entry in entries {
                if let file = try Self.remoteFile(from: entry, url: url) { files.append(file) }
            }
            next = response.headers["link"].flatMap(HubURL.nextLink)
        }
        return files
    }

    /// Where a file's bytes are served (the hub redirects LFS files to its CDN).
    public func resolveURL(repo: String, revision: String, path: String) -> String {
        configuration.endpoint + "/" + repo + "/resolve/" + HubURL.encodeComponent(revision) + "/" + HubURL.encodePath(path)
    }

    static func remoteFile(from entry: [String: Any], url: String) throws -> RemoteFile? {
        guard (entry["type"] as? String) == "file" else { return nil }
        guard let path = entry["path"] as? String, HubURL.isSafeRelativePath(path) else {
            throw ModelStoreError.invalidResponse(url: url, reason: "unsafe or missing path in \(entry)")
        }
        if let lfs = entry["lfs"] as? [String: Any] {
            guard let oid = (lfs["oid"] as? String ?? lfs["sha256"] as? String)?.lowercased(),
                  oid.utf8.count == 64, let size = int64(lfs["size"] ?? entry["size"]) else {
                throw ModelStoreError.invalidResponse(url: url, reason: "bad lfs entry for \(path)")
            }
            return RemoteFile(path: path, size: size, digest: .sha256(oid))
        }
        guard let oid = (entry["oid"] as? String)?.lowercased(), HFCache.isCommitHash(oid),
              let size = int64(entry["size"]) else {
            throw ModelStoreError.invalidResponse(url: url, reason: "bad entry for \(path)")
        }
        return RemoteFile(path: path, size: size, digest: .gitBlobSHA1(oid))
    }

    private static func int64(_ value: Any?) -> Int64? {
        if let number = value as? NSNumber { return number.int64Value }
        if let text = value as? String { return Int64(text) }
        return nil
    }

    private struct JSONResponse {
        let json: Any
        let headers: [String: String]
    }

    private func getJSON(url: String, repo: String, revision: String) throws -> JSONResponse {
        guard let easy else { throw ModelStoreError.transport(url: url, code: -1, message: "libcurl unavailable") }
        let exchange = MemoryExchange(cancellation: cancellation, limit: 256 << 20)
        let code = easy.perform(url: url, exchange: exchange, configuration: configuration, sendToken: true,
                                range: nil, timeoutSeconds: 120, acceptCompressed: true)
        if cancellation.isCancelled { throw ModelStoreError.cancelled }
        guard code == CURLE_OK else {
            throw ModelStoreError.transport(url: url, code: Int(code.rawValue), message: easy.errorMessage(for: code))
        }
        if let error = HubErrors.error(status: exchange.status, headers: exchange.headers, body: exchange.body,
                                       url: url, repo: repo, revision: revision, file: nil,
                                       tokenSent: configuration.token != nil) {
            throw error
        }
        do {
            return JSONResponse(json: try JSONSerialization.jsonObject(with: exchange.body), headers: exchange.headers)
        } catch {
            throw ModelStoreError.invalidResponse(url: url, reason: "not JSON (\(exchange.body.count) bytes)")
        }
    }
}

/// Collects a (small) body in memory.
final class MemoryExchange: HTTPExchange {
    private(set) var body = Data()
    private let limit: Int

    init(cancellation: CancellationFlag, limit: Int) {
        self.limit = limit
        super.init(cancellation: cancellation)
    }

    override func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.count + bytes.count <= limit else { return false }
        body.append(contentsOf: bytes)
        return true
    }
}

/// Maps hub HTTP answers to errors, using the hub's X-Error-Code / X-Error-Message headers.
enum HubErrors {
    static func error(status: Int, headers: [String: String], body: Data, url: String, repo: String,
                      revision: String, file: String?, tokenSent: Bool) -> ModelStoreError? {
        if (200..<300).contains(status) { return nil }
        let message = serverMessage(headers: headers, body: body)
        let code = headers["x-error-code"]
        if code == "RepoNotFound" || code == "RevisionNotFound" || code == "EntryNotFound" || status == 404 {
            let missingFile = code == "EntryNotFound" || (status == 404 && code == nil) ? file : nil
            return .notFound(repo: repo, revision: revision, file: missingFile, serverMessage: message)
        }
        if status == 401 || status == 403 || code == "GatedRepo" {
            return .accessDenied(repo: repo, file: file, status: status, tokenSent: tokenSent, serverMessage: message)
        }
        return .httpStatus(url: url, status: status, serverMessage: message)
    }

    static func serverMessage(headers: [String: String], body: Data) -> String? {
        if let message = headers["x-error-message"], !message.isEmpty { return message }
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
           let error = object["error"] as? String { return error }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty || text.hasPrefix("<") ? nil : text
    }
}

/// URL pieces of the hub's layout.
enum HubURL {
    private static let unreserved: Set<UInt8> = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8))

    /// Percent-encodes everything but unreserved characters (a revision like "refs/pr/1" becomes one segment).
    static func encodeComponent(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// Percent-encodes each segment of a repository path, keeping the slashes.
    static func encodePath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { encodeComponent(String($0)) }
            .joined(separator: "/")
    }

    /// The URL of `<url>; rel="next"` in a Link header.
    static func nextLink(_ header: String) -> String? {
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let target = pieces.first, target.hasPrefix("<"), target.hasSuffix(">") else { continue }
            if pieces.dropFirst().contains(where: { $0.replacingOccurrences(of: " ", with: "") == "rel=\"next\"" }) {
                return String(target.dropFirst().dropLast())
            }
        }
        return nil
    }

    /// A relative path with no empty, "." or ".." segment: safe to join to a local folder.
    static func isSafeRelativePath(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\0") else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
            !$0.isEmpty && $0 != "." && $0 != ".."
        }
    }

    /// "ORG/NAME" with safe characters only.
    static func isValidRepoID(_ repo: String) -> Bool {
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        let allowed = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._".utf8))
        return parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && $0.utf8.allSatisfy(allowed.contains) }
    }
}
