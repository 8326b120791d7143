import Foundation
@testable import ModelStore

/// A fake Hugging Face hub: the revision and tree APIs and `resolve` URLs on one port, and an "LFS CDN"
/// on another port that the hub redirects LFS files to. It logs every request and can misbehave on
/// purpose (cut transfers, corrupt content, ignore Range, gate repositories, paginate listings).
final class FakeHub: @unchecked Sendable {
    struct Repo {
        var commit: String
        var files: [String: Data]
        /// Paths stored in LFS: served by the CDN after a redirect, listed with an lfs.oid (sha256).
        var lfs: Set<String> = []
        /// Downloads need `Authorization: Bearer <validToken>`.
        var gated = false
        var licence: String? = "mit"
    }

    struct LoggedRequest {
        let server: String   // "hub" or "cdn"
        let request: ReceivedRequest
    }

    let validToken = "hf_test_token_ok"
    private let lock = NSLock()
    private var repos: [String: Repo] = [:]
    private var log: [LoggedRequest] = []
    private var cuts: [String: (bytes: Int, times: Int)] = [:]
    private var corrupt: Set<String> = []
    private var unresolvable: Set<String> = []
    private var ignoreRange = false
    private var treePageSize: Int?
    private var bodyDelay: TimeInterval = 0
    private var activeFileResponses = 0
    private(set) var maxConcurrentFileResponses = 0
    private var hubServer: HTTPTestServer!
    private var cdnServer: HTTPTestServer!

    init() throws {
        hubServer = try HTTPTestServer { [unowned self] in self.handleHub($0) }
        cdnServer = try HTTPTestServer { [unowned self] in self.handleCDN($0) }
    }

    func stop() {
        hubServer.stop()
        cdnServer.stop()
    }

    var endpoint: String { "http://127.0.0.1:\(hubServer.port)" }
    var cdnPort: Int { cdnServer.port }

    // MARK: set-up

    @discardableResult
    func addRepo(_ id: String, files: [String: Data], lfs: Set<String> = [], gated: Bool = false,
                 commit: String? = nil) -> Repo {
        let repo = Repo(commit: commit ?? String(hexString(SHA1.hash(Array(id.utf8)))), files: files, lfs: lfs, gated: gated)
        lock.lock(); repos[id] = repo; lock.unlock()
        return repo
    }

    func repo(_ id: String) -> Repo? {
        lock.lock(); defer { lock.unlock() }
        return repos[id]
    }

    /// The next `times` downloads of `path` stop after `bytes` body bytes.
    func cut(_ path: String, after bytes: Int, times: Int = 1) {
        lock.lock(); cuts[path] = (bytes, times); lock.unlock()
    }

    /// Serve different bytes (same length) than listed for `path`.
    func corruptContent(of path: String) {
        lock.lock(); corrupt.insert(path); lock.unlock()
    }

    /// Listed in the tree but 404 on resolve.
    func makeUnresolvable(_ path: String) {
        lock.lock(); unresolvable.insert(path); lock.unlock()
    }

    func setIgnoreRange(_ value: Bool) {
        lock.lock(); ignoreRange = value; lock.unlock()
    }

    func setTreePageSize(_ size: Int?) {
        lock.lock(); treePageSize = size; lock.unlock()
    }

    func setBodyDelay(_ seconds: TimeInterval) {
        lock.lock(); bodyDelay = seconds; lock.unlock()
    }

    // MARK: inspection

    var requests: [LoggedRequest] {
        lock.lock(); defer { lock.unlock() }
        return log
    }

    func clearLog() {
        lock.lock(); log.removeAll(); maxConcurrentFileResponses = 0; lock.unlock()
    }

    static func gitBlobID(_ data: Data) -> String {
        let hasher = SHA1.gitBlob(size: Int64(data.count))
        hasher.update(data)
        return hasher.finalizeHex()
    }

    static func sha256(_ data: Data) -> String {
        hexString(SHA256.hash(Array(data)))
    }

    // MARK: hub

    private func handleHub(_ request: ReceivedRequest) -> TestResponse {
        record("hub", request)
        let segments = request.path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        // /api/models/ORG/NAME/revision/REV  and  /api/models/ORG/NAME/tree/REV
        if segments.count >= 6, segments[0] == "api", segments[1] == "models" {
            let repoID = segments[2] + "/" + segments[3]
            guard let repo = repo(repoID) else { return notFound("RepoNotFound", "Repository Not Found") }
            guard resolves(segments[5], in: repo) else { return notFound("RevisionNotFound", "Invalid rev id") }
            switch segments[4] {
            case "revision": return revisionInfo(repoID, repo)
            case "tree": return tree(repoID, repo, revision: segments[5], cursor: Int(request.query["cursor"] ?? "") ?? 0)
            default: return notFound(nil, "no such API")
            }
        }
        // /ORG/NAME/resolve/REV/PATH...
        if segments.count >= 5, segments[2] == "resolve" {
            let repoID = segments[0] + "/" + segments[1]
            guard let repo = repo(repoID) else { return notFound("RepoNotFound", "Repository Not Found") }
            guard resolves(segments[3], in: repo) else { return notFound("RevisionNotFound", "Invalid rev id") }
            let path = segments[4...].joined(separator: "/")
            lock.lock()
            let hidden = unresolvable.contains(path)
            lock.unlock()
            guard let content = repo.files[path], !hidden else { return notFound("EntryNotFound", "Entry not found") }
            if repo.gated {
                switch request.headers["authorization"] {
                case nil:
                    return TestResponse(status: 401, headers: [("X-Error-Code", "GatedRepo"),
                        ("X-Error-Message", "Access to model \(repoID) is restricted. You must have access to it and be authenticated to access it. Please log in.")])
                case "Bearer \(validToken)":
                    break
                default:
                    return TestResponse(status: 403, headers: [("X-Error-Code", "GatedRepo"),
                        ("X-Error-Message", "Access to model \(repoID) is restricted and you are not in the authorized list.")])
                }
            }
            if repo.lfs.contains(path) {
                let sha = Self.sha256(content)
                return TestResponse(status: 302, headers: [
                    ("Location", "http://127.0.0.1:\(cdnPort)/blobs/\(sha)?X-Amz-Signature=fake"),
                    ("X-Repo-Commit", repo.commit), ("X-Linked-Etag", "\"\(sha)\""), ("X-Linked-Size", "\(content.count)"),
                    ("ETag", "\"\(Self.gitBlobID(content))\""),
                ])
            }
            var response = fileResponse(path: path, content: content, request: request)
            response.headers += [("X-Repo-Commit", repo.commit), ("ETag", "\"\(Self.gitBlobID(content))\"")]
            return response
        }
        return notFound(nil, "not found")
    }

    private func resolves(_ revision: String, in repo: Repo) -> Bool {
        revision == "main" || revision == repo.commit
    }

    private func revisionInfo(_ id: String, _ repo: Repo) -> TestResponse {
        var object: [String: Any] = ["id": id, "sha": repo.commit, "gated": repo.gated ? "auto" : false,
                                     "siblings": repo.files.keys.sorted().map { ["rfilename": $0] }]
        if let licence = repo.licence { object["cardData"] = ["license": licence] }
        return json(object)
    }

    private func tree(_ id: String, _ repo: Repo, revision: String, cursor: Int) -> TestResponse {
        var entries: [[String: Any]] = []
        var directories = Set<String>()
        for path in repo.files.keys.sorted() {
            var parts = path.split(separator: "/").dropLast()
            while !parts.isEmpty {
                directories.insert(parts.joined(separator: "/"))
                parts = parts.dropLast()
            }
        }
        for directory in directories.sorted() {
            entries.append(["type": "directory", "oid": String(repeating: "d", count: 40), "size": 0, "path": directory])
        }
        for (path, content) in repo.files.sorted(by: { $0.key < $1.key }) {
            var entry: [String: Any] = ["type": "file", "oid": Self.gitBlobID(content), "size": content.count, "path": path]
            if repo.lfs.contains(path) {
                entry["lfs"] = ["oid": Self.sha256(content), "size": content.count, "pointerSize": 134]
            }
            entries.append(entry)
        }
        lock.lock()
        let pageSize = treePageSize
        lock.unlock()
        guard let pageSize else { return json(entries) }
        let page = Array(entries.dropFirst(cursor).prefix(pageSize))
        var response = json(page)
        if cursor + pageSize < entries.count {
            response.headers.append(("Link", "<\(endpoint)/api/models/\(id)/tree/\(revision)?recursive=true&cursor=\(cursor + pageSize)>; rel=\"next\""))
        }
        return response
    }

    // MARK: CDN

    private func handleCDN(_ request: ReceivedRequest) -> TestResponse {
        record("cdn", request)
        let segments = request.path.split(separator: "/").map(String.init)
        guard segments.count == 2, segments[0] == "blobs" else { return TestResponse(status: 404) }
        lock.lock()
        let match = repos.values.lazy.flatMap { repo in repo.files.filter { repo.lfs.contains($0.key) } }
            .first { Self.sha256($0.value) == segments[1] }
        lock.unlock()
        guard let (path, content) = match else { return TestResponse(status: 404) }
        return fileResponse(path: path, content: content, request: request)
    }

    // MARK: helpers

    private func fileResponse(path: String, content: Data, request: ReceivedRequest) -> TestResponse {
        lock.lock()
        var body = content
        if corrupt.contains(path), !body.isEmpty { body[body.startIndex] ^= 0xff }
        var cutAfter: Int?
        if let cut = cuts[path], cut.times > 0 {
            cutAfter = cut.bytes
            cuts[path] = (cut.bytes, cut.times - 1)
        }
        let honourRange = !ignoreRange
        let delay = bodyDelay
        activeFileResponses += 1
        maxConcurrentFileResponses = max(maxConcurrentFileResponses, activeFileResponses)
        lock.unlock()
        defer {
            lock.lock(); activeFileResponses -= 1; lock.unlock()
        }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }

        if honourRange, let range = request.headers["range"], range.hasPrefix("bytes="),
           let start = Int(range.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)[0]) {
            guard start < body.count else {
                return TestResponse(status: 416, headers: [("Content-Range", "bytes */\(body.count)")])
            }
            let slice = body.subdata(in: start..<body.count)
            return TestResponse(status: 206, headers: [("Content-Range", "bytes \(start)-\(body.count - 1)/\(body.count)"),
                                                       ("Accept-Ranges", "bytes")],
                                body: slice, cutAfter: cutAfter)
        }
        return TestResponse(status: 200, headers: [("Accept-Ranges", "bytes")], body: body, cutAfter: cutAfter)
    }

    private func record(_ server: String, _ request: ReceivedRequest) {
        lock.lock(); log.append(LoggedRequest(server: server, request: request)); lock.unlock()
    }

    private func json(_ object: Any) -> TestResponse {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return TestResponse(status: 200, headers: [("Content-Type", "application/json")], body: data)
    }

    private func notFound(_ code: String?, _ message: String) -> TestResponse {
        var headers = [("X-Error-Message", message)]
        if let code { headers.append(("X-Error-Code", code)) }
        return TestResponse(status: 404, headers: headers, body: Data("{\"error\":\"\(message)\"}".utf8))
    }
}
