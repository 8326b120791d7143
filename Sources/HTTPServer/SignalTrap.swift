import Foundation

/// Write end of the self-pipe that carries signal numbers from signal context to Dispatch.
private var signalPipeWriteFD: Int32 = -1

/// The installed signal handler: async-signal-safe (one `write`), errno preserved.
private func forwardSignalToPipe(_ signalNumber: Int32) {
    let savedErrno = errno
    var byte = UInt8(truncatingIfNeeded: signalNumber)
    _ = write(signalPipeWriteFD, &byte, 1)
    errno = savedErrno
}

/// Handles POSIX signals on a dispatch queue instead of in signal context. A C handler writes the
/// signal number into a self-pipe that a Dispatch read source drains. (Dispatch signal sources
/// are not used: on Linux they need the signal blocked in every thread, or a thread that does
/// not block it swallows the signal.) One handler per signal; a newer trap replaces an older one.
/// Keep the object alive while needed.
public final class SignalTrap: @unchecked Sendable {
    private static let lock = NSLock()
    private static var handlers: [Int32: (Int32) -> Void] = [:]
    private static var pipeSource: DispatchSourceRead?

    private let signals: [Int32]
    private var active = true

    public init(signals: [Int32] = [SIGTERM, SIGINT], queue: DispatchQueue = DispatchQueue(label: "signals"),
                handler: @escaping (Int32) -> Void) {
        self.signals = signals
        Self.lock.lock()
        defer { Self.lock.unlock() }
        Self.startPipeIfNeeded()
        for signalNumber in signals {
            Self.handlers[signalNumber] = { number in queue.async { handler(number) } }
            signal(signalNumber, forwardSignalToPipe)
        }
    }

    /// Stops handling and restores the default actions.
    public func cancel() {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        guard active else { return }
        active = false
        for signalNumber in signals {
            Self.handlers[signalNumber] = nil
            signal(signalNumber, SIG_DFL)
        }
    }

    deinit { cancel() }

    /// Whether some trap currently handles `signalNumber`.
    static func isHandled(_ signalNumber: Int32) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return handlers[signalNumber] != nil
    }

    /// Called with `lock` held.
    private static func startPipeIfNeeded() {
        guard pipeSource == nil else { return }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for fd in fds {
            Socket.setNonBlocking(fd)
            Socket.setCloseOnExec(fd)
        }
        signalPipeWriteFD = fds[1]
        let readFD = fds[0]
        let source = DispatchSource.makeReadSource(fileDescriptor: readFD, queue: DispatchQueue(label: "signal-pipe"))
        source.setEventHandler {
            var bytes = [UInt8](repeating: 0, count: 64)
            let count = read(readFD, &bytes, bytes.count)
            guard count > 0 else { return }
            for byte in bytes[0..<count] {
                lock.lock()
                let handler = handlers[Int32(byte)]
                lock.unlock()
                handler?(Int32(byte))
            }
        }
        source.resume()
        pipeSource = source
    }
}
