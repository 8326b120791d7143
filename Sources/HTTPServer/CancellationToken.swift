import Foundation

/// Says that nobody waits for a job's answer any more (its client disconnected), so the job
/// should not start, or should stop at its next stage boundary. The connection sets it; the job
/// queue and the pipeline check it. Thread-safe; the first `cancel` wins.
public final class CancellationToken: @unchecked Sendable {
    private let lock = NSLock()
    private var storedReason: String?
    private var handlers: [(String) -> Void] = []

    public init() {}

    public var isCancelled: Bool { reason != nil }

    /// Why it was cancelled, or nil while it is not.
    public var reason: String? {
        lock.lock()
        defer { lock.unlock() }
        return storedReason
    }

    /// Cancels and runs the `onCancel` handlers on the caller's thread. Later calls do nothing.
    public func cancel(reason: String) {
        lock.lock()
        guard storedReason == nil else {
            lock.unlock()
            return
        }
        storedReason = reason
        let pending = handlers
        handlers = []
        lock.unlock()
        for handler in pending { handler(reason) }
    }

    /// Runs `handler` once when the token is cancelled: at once (on this thread) when it already is.
    public func onCancel(_ handler: @escaping (String) -> Void) {
        lock.lock()
        if let reason = storedReason {
            lock.unlock()
            handler(reason)
            return
        }
        handlers.append(handler)
        lock.unlock()
    }
}
