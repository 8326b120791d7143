import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a file's content must hash to, as the hub lists it.
public enum ContentDigest: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// An LFS file: SHA-256 of the content (the LFS oid, also the hub's X-Linked-Etag).
    case sha256(String)
    /// A small file kept in git: the git blob id, SHA-1 of "blob <size>\0" + content (the hub's ETag).
    case gitBlobSHA1(String)

    public var hex: String {
        switch self {
        case .sha256(let hex), .gitBlobSHA1(let hex): return hex
        }
    }

    public var algorithm: String {
        switch self {
        case .sha256: return "sha256"
        case .gitBlobSHA1: return "git-sha1"
        }
    }

    public var description: String { "\(algorithm):\(hex)" }

    func makeHasher(size: Int64) -> StreamingHash {
        switch self {
        case .sha256: return SHA256()
        case .gitBlobSHA1: return SHA1.gitBlob(size: size)
        }
    }
}

enum FileHashing {
    static let chunkSize = 4 << 20

    /// Feeds the first `length` bytes of the file at `path` to `hasher`, streaming in 4 MiB reads.
    static func feed(path: String, length: Int64, into hasher: StreamingHash) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelStoreError.fileSystem(path: path, reason: errnoText()) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        var remaining = length
        while remaining > 0 {
            let want = Int(min(Int64(chunkSize), remaining))
            let got = read(fd, buffer, want)
            if got < 0 {
                if errno == EINTR { continue }
                throw ModelStoreError.fileSystem(path: path, reason: errnoText())
            }
            if got == 0 {
                throw ModelStoreError.fileSystem(path: path, reason: "file ended after \(length - remaining) of \(length) bytes")
            }
            hasher.update(UnsafeRawBufferPointer(start: buffer, count: got))
            remaining -= Int64(got)
        }
    }

    /// The digest of a whole file, computed the way `digest` names it.
    static func digest(ofFileAt path: String, like digest: ContentDigest) throws -> String {
        let size = try fileSize(path)
        let hasher = digest.makeHasher(size: size)
        try feed(path: path, length: size, into: hasher)
        return hasher.finalizeHex()
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// Size of the file at `path` (following symlinks).
func fileSize(_ path: String) throws -> Int64 {
    var info = stat()
    guard stat(path, &info) == 0 else { throw ModelStoreError.fileSystem(path: path, reason: errnoText()) }
    return Int64(info.st_size)
}

/// True when `path` is a regular file (following symlinks: a dangling link is not a file).
func isRegularFile(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// Size of a regular file, or nil when there is none.
func regularFileSize(_ path: String) -> Int64? {
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int64(info.st_size)
}
