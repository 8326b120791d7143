import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The huggingface_hub cache layout, read and written the way the Python library does so both share it:
///
///     <root>/models--ORG--NAME/refs/<branch>            -> commit hash (no newline)
///     <root>/models--ORG--NAME/blobs/<etag>             file content (etag = LFS sha256 or git blob sha1)
///     <root>/models--ORG--NAME/blobs/<etag>.incomplete  a download in progress (resumable)
///     <root>/models--ORG--NAME/snapshots/<commit>/<path> relative symlink to ../../blobs/<etag>
///     <root>/.locks/models--ORG--NAME/<etag>.lock       flock(2) lock, as python's filelock takes it
public struct HFCache: Sendable, Equatable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    /// A full 40-hex git commit id.
    public static func isCommitHash(_ revision: String) -> Bool {
        revision.utf8.count == 40 && revision.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    public static func folderName(repo: String) -> String {
        "models--" + repo.replacingOccurrences(of: "/", with: "--")
    }

    public func repoFolder(_ repo: String) -> String {
        root + "/" + HFCache.folderName(repo: repo)
    }

    /// The commit a revision points at locally: the revision itself when it is a commit hash, else
    /// the content of refs/<revision>. Nil when the cache has never seen this revision.
    public func commit(repo: String, revision: String) -> String? {
        if HFCache.isCommitHash(revision) { return revision }
        let path = repoFolder(repo) + "/refs/" + revision
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return HFCache.isCommitHash(value) ? value : nil
    }

    public func snapshotFolder(repo: String, commit: String) -> String {
        repoFolder(repo) + "/snapshots/" + commit
    }

    public func blobPath(repo: String, blob: String) -> String {
        repoFolder(repo) + "/blobs/" + blob
    }

    public func incompletePath(repo: String, blob: String) -> String {
        blobPath(repo: repo, blob: blob) + ".incomplete"
    }

    public func lockPath(repo: String, blob: String) -> String {
        root + "/.locks/" + HFCache.folderName(repo: repo) + "/" + blob + ".lock"
    }

    /// Records that `revision` (a branch or tag) resolved to `commit`.
    public func writeRef(repo: String, revision: String, commit: String) throws {
        guard revision != commit else { return }
        let path = repoFolder(repo) + "/refs/" + revision
        try createDirectory((path as NSString).deletingLastPathComponent)
        try writeAtomically(Data(commit.utf8), to: path)
    }

    /// Makes snapshots/<commit>/<path> a relative symlink to the blob, replacing whatever was there.
    public func linkSnapshotFile(repo: String, commit: String, path: String, blob: String) throws {
        let link = snapshotFolder(repo: repo, commit: commit) + "/" + path
        try createDirectory((link as NSString).deletingLastPathComponent)
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: 2 + depth) + "blobs/" + blob
        unlink(link)
        guard symlink(target, link) == 0 else {
            throw ModelStoreError.fileSystem(path: link, reason: "cannot create symlink: " + errnoText())
        }
    }
}

func createDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw ModelStoreError.fileSystem(path: path, reason: "cannot create directory: \(error.localizedDescription)")
    }
}

func writeAtomically(_ data: Data, to path: String) throws {
    let temporary = path + ".tmp-\(getpid())"
    guard FileManager.default.createFile(atPath: temporary, contents: data) else {
        throw ModelStoreError.fileSystem(path: temporary, reason: "cannot write: " + errnoText())
    }
    guard rename(temporary, path) == 0 else {
        let reason = errnoText()
        unlink(temporary)
        throw ModelStoreError.fileSystem(path: path, reason: "cannot rename into place: " + reason)
    }
}

/// An exclusive flock(2) lock held until `release` (or deinit); the same lock python's filelock takes,
/// so a concurrent huggingface_hub download of the same blob waits for us and vice versa.
final class FileLock {
    private var fd: Int32

    init(path: String) throws {
        try createDirectory((path as NSString).deletingLastPathComponent)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ModelStoreError.fileSystem(path: path, reason: "cannot open lock: " + errnoText()) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let reason = errnoText()
            close(fd)
            fd = -1
            throw ModelStoreError.fileSystem(path: path, reason: "cannot lock: " + reason)
        }
    }

    func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit {
        release()
    }
}
