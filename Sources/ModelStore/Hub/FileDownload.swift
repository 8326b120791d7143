import CCurl
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Downloads one file into `<destination>.incomplete`-style partial path, resuming what is already there
/// with a Range request, hashing while it writes, and retrying cut transfers. On success the partial file
/// holds exactly the verified content; the caller moves it into place.
final class FileDownload {
    let repo: String
    let file: RemoteFile
    let url: String
    let partialPath: String

    init(repo: String, file: RemoteFile, url: String, partialPath: String) {
        self.repo = repo
        self.file = file
        self.url = url
        self.partialPath = partialPath
    }

    /// Runs until the partial file is complete and verified, or throws (deleting a file that failed
    /// verification, keeping a partial one that can be resumed later).
    func run(easy: CurlEasy, configuration: HubConfiguration, cancellation: CancellationFlag,
             progress: FileProgress) throws {
        var state = try PartialFile(path: partialPath, file: file)
        progress.started(existingBytes: state.length)
        var failures = 0
        var transferred = false
        while true {
            if cancellation.isCancelled { throw ModelStoreError.cancelled }
            if state.length == file.size {
                do {
                    try verify(&state)
                    return
                } catch let error as ModelStoreError where !transferred {
                    // A complete-looking leftover of an earlier run failed verification (it was deleted):
                    // download the file afresh once.
                    _ = error
                    progress.restarted(droppedBytes: state.length)
                    state = try PartialFile(path: partialPath, file: file)
                    transferred = true
                    continue
                }
            }
            transferred = true
            let outcome = try transfer(into: &state, easy: easy, configuration: configuration,
                                       cancellation: cancellation, progress: progress)
            switch outcome {
            case .complete:
                try verify(&state)
                return
            case .retry(let error):
                failures += 1
                if failures > configuration.maxRetries { throw error }
                let delay = configuration.retryBaseDelay * pow(2, Double(failures - 1))
                try sleep(seconds: delay, cancellation: cancellation)
            }
        }
    }

    private enum Outcome {
        case complete
        case retry(ModelStoreError)
    }

    private func transfer(into state: inout PartialFile, easy: CurlEasy, configuration: HubConfiguration,
                          cancellation: CancellationFlag, progress: FileProgress) throws -> Outcome {
        let sink = try state.openForAppend()
        let exchange = FileExchange(cancellation: cancellation, state: state, sink: sink, progress: progress)
        let requestedOffset = state.length
        let code = easy.perform(url: url, exchange: exchange, configuration: configuration, sendToken: true,
                                range: requestedOffset, timeoutSeconds: nil, acceptCompressed: false)
        sink.close()
        state = exchange.state
        if cancellation.isCancelled { throw ModelStoreError.cancelled }
        if let writeError = exchange.writeError {
            if case let .sizeMismatch(_, path, expected, actual) = writeError {
                unlink(partialPath)
                throw ModelStoreError.sizeMismatch(repo: repo, file: path, expected: expected, actual: actual)
            }
            throw writeError
        }

        let status = exchange.status
        if status == 416 {
            // Range not satisfiable: the partial file is as long as or longer than the remote one.
            state.discard(progress: progress)
            return .retry(.httpStatus(url: url, status: 416, serverMessage: "range \(requestedOffset)- refused"))
        }
        if exchange.rangeMismatch {
            state.discard(progress: progress)
            return .retry(.invalidResponse(url: url, reason: "the server answered another byte range than requested"))
        }
        if status != 0, !(200..<300).contains(status) {
            let error = HubErrors.error(status: status, headers: exchange.headers, body: exchange.errorBody,
                                        url: url, repo: repo, revision: "", file: file.path,
                                        tokenSent: configuration.token != nil)
                ?? .httpStatus(url: url, status: status, serverMessage: nil)
            if status == 429 || status >= 500 { return .retry(error) }
            throw Self.withRevision(error)
        }
        guard code == CURLE_OK else {
            let error = ModelStoreError.transport(url: url, code: Int(code.rawValue), message: easy.errorMessage(for: code))
            if Self.isRetryable(code) { return .retry(error) }
            throw error
        }
        if state.length < file.size {
            return .retry(.transport(url: url, code: Int(CURLE_PARTIAL_FILE.rawValue),
                                     message: "transfer ended at \(state.length) of \(file.size) bytes"))
        }
        return .complete
    }

    private func verify(_ state: inout PartialFile) throws {
        let actualSize = (try? fileSize(partialPath)) ?? -1
        guard actualSize == file.size, state.length == file.size else {
            unlink(partialPath)
            throw ModelStoreError.sizeMismatch(repo: repo, file: file.path, expected: file.size, actual: max(actualSize, state.length))
        }
        let actual = state.finalizeDigest()
        guard actual == file.digest.hex else {
            unlink(partialPath)
            throw ModelStoreError.checksumMismatch(repo: repo, file: file.path, expected: file.digest.description,
                                                   actual: "\(file.digest.algorithm):\(actual)")
        }
    }

    /// The revision is not known down here; the message reads better without an empty one.
    private static func withRevision(_ error: ModelStoreError) -> ModelStoreError {
        if case let .notFound(repo, _, file, message) = error {
            return .notFound(repo: repo, revision: "the requested revision", file: file, serverMessage: message)
        }
        return error
    }

    private static func isRetryable(_ code: CURLcode) -> Bool {
        let retryable: [CURLcode] = [
            CURLE_PARTIAL_FILE, CURLE_OPERATION_TIMEDOUT, CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
            CURLE_COULDNT_CONNECT, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_SSL_CONNECT_ERROR,
        ]
        return retryable.contains(code)
    }
}

/// Sleeps in short slices so a cancellation is noticed quickly.
func sleep(seconds: Double, cancellation: CancellationFlag) throws {
    var left = seconds
    while left > 0 {
        if cancellation.isCancelled { throw ModelStoreError.cancelled }
        let slice = min(left, 0.05)
        usleep(useconds_t(slice * 1_000_000))
        left -= slice
    }
}

/// A partial download on disk and the running hash of exactly its bytes.
struct PartialFile {
    let path: String
    let file: RemoteFile
    private(set) var length: Int64
    private(set) var hasher: StreamingHash

    /// Picks up what an earlier run left (hashing it), or starts empty. A leftover longer than the
    /// remote file cannot be a prefix of it and is dropped.
    init(path: String, file: RemoteFile) throws {
        self.path = path
        self.file = file
        hasher = file.digest.makeHasher(size: file.size)
        length = 0
        if let existing = regularFileSize(path) {
            if existing <= file.size {
                try FileHashing.feed(path: path, length: existing, into: hasher)
                length = existing
            } else {
                unlink(path)
            }
        }
        if file.size == 0, length == 0 {
            try createDirectory((path as NSString).deletingLastPathComponent)
            guard FileManager.default.createFile(atPath: path, contents: Data()) else {
                throw ModelStoreError.fileSystem(path: path, reason: "cannot create: " + errnoText())
            }
        }
    }

    func openForAppend() throws -> FileSink {
        try createDirectory((path as NSString).deletingLastPathComponent)
        return try FileSink(path: path, truncateTo: length)
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bytes)
        length += Int64(bytes.count)
    }

    /// Forgets every byte (the server sent the whole file instead of the requested range).
    mutating func restart() {
        hasher = file.digest.makeHasher(size: file.size)
        length = 0
    }

    /// Deletes the partial file and starts over.
    mutating func discard(progress: FileProgress) {
        unlink(path)
        progress.restarted(droppedBytes: length)
        restart()
    }

    func finalizeDigest() -> String {
        hasher.finalizeHex()
    }
}

/// Appends to a file through its descriptor.
final class FileSink {
    private var fd: Int32
    let path: String

    init(path: String, truncateTo length: Int64) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ModelStoreError.fileSystem(path: path, reason: "cannot open for writing: " + errnoText()) }
        guard ftruncate(fd, off_t(length)) == 0, lseek(fd, off_t(length), SEEK_SET) >= 0 else {
            let reason = errnoText()
            close()
            throw ModelStoreError.fileSystem(path: path, reason: reason)
        }
    }

    /// Empties the file (and positions at its start).
    func truncate() throws {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            throw ModelStoreError.fileSystem(path: path, reason: errnoText())
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = Glibc.write(fd, pointer, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw ModelStoreError.fileSystem(path: path, reason: "write failed: " + errnoText())
            }
            pointer += written
            remaining -= written
        }
    }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    deinit {
        close()
    }
}

/// Streams the final response body of a file download into the partial file.
final class FileExchange: HTTPExchange {
    private(set) var state: PartialFile
    private let sink: FileSink
    private let progress: FileProgress
    private let requestedOffset: Int64
    private(set) var errorBody = Data()
    private(set) var writeError: ModelStoreError?
    private(set) var rangeMismatch = false
    private var writingFile = false

    init(cancellation: CancellationFlag, state: PartialFile, sink: FileSink, progress: FileProgress) {
        self.state = state
        self.sink = sink
        self.progress = progress
        requestedOffset = state.length
        super.init(cancellation: cancellation)
    }

    override func bodyWillStart(status: Int, headers: [String: String]) -> Bool {
        switch status {
        case 206:
            if let range = headers["content-range"], Self.rangeStart(range) != requestedOffset {
                rangeMismatch = true
                return false
            }
            writingFile = true
        case 200..<300:
            if requestedOffset > 0 {
                // The server ignored the Range header and sends the whole file: start over.
                do { try sink.truncate() } catch {
                    writeError = error as? ModelStoreError
                    return false
                }
                progress.restarted(droppedBytes: state.length)
                state.restart()
            }
            writingFile = true
        default:
            writingFile = false
        }
        return true
    }

    override func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard writingFile else {
            if errorBody.count < 65_536 { errorBody.append(contentsOf: bytes.prefix(65_536 - errorBody.count)) }
            return true
        }
        guard state.length + Int64(bytes.count) <= state.file.size else {
            writeError = .sizeMismatch(repo: "", file: state.file.path, expected: state.file.size,
                                       actual: state.length + Int64(bytes.count))
            return false
        }
        do {
            try sink.write(bytes)
        } catch {
            writeError = error as? ModelStoreError
            return false
        }
        state.append(bytes)
        progress.advanced(by: Int64(bytes.count))
        return true
    }

    /// START of "bytes START-END/TOTAL".
    static func rangeStart(_ header: String) -> Int64? {
        guard let unitEnd = header.firstIndex(of: " ") else { return nil }
        let spec = header[header.index(after: unitEnd)...]
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        return Int64(spec[..<dash].trimmingCharacters(in: .whitespaces))
    }
}
