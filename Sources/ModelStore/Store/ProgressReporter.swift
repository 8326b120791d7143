import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How fetch progress is shown.
public enum ProgressStyle: String, Sendable, CaseIterable, Codable {
    /// A live bar when stderr is a terminal, plain lines otherwise.
    case auto
    case bar
    case lines
    case quiet
}

/// Aggregated download progress of several files at once: a live one-line bar with rate and ETA on a
/// terminal, or plain lines (file started / finished, a summary every few seconds) in logs.
/// Thread-safe: transfers report from their worker threads.
public final class ProgressReporter: @unchecked Sendable {
    public enum Mode: Sendable { case bar, lines, quiet }

    private let mode: Mode
    private let output: (String) -> Void
    private let clock: () -> Double
    private let terminalWidth: () -> Int
    private let lineInterval: Double
    private let lock = NSLock()

    private var totalBytes: Int64 = 0
    private var plannedFiles = 0
    private var finishedFiles = 0
    private var doneBytes: Int64 = 0          // bytes on disk, including resumed ones
    private var sessionBytes: Int64 = 0       // bytes received in this run
    private var active: [Int: String] = [:]
    private var nextID = 0
    private var samples: [(time: Double, bytes: Int64)] = []
    private var startTime: Double?
    private var lastRender = -Double.infinity
    private var barShown = false

    public init(mode: Mode, output: @escaping (String) -> Void, clock: @escaping () -> Double = monotonicSeconds,
                terminalWidth: @escaping () -> Int = { 100 }, lineInterval: Double = 5) {
        self.mode = mode
        self.output = output
        self.clock = clock
        self.terminalWidth = terminalWidth
        self.lineInterval = lineInterval
    }

    /// The mode for a style: `.auto` is a bar when stderr is a terminal.
    public static func mode(for style: ProgressStyle, isTerminal: Bool = isatty(STDERR_FILENO) == 1) -> Mode {
        switch style {
        case .auto: return isTerminal ? .bar : .lines
        case .bar: return .bar
        case .lines: return .lines
        case .quiet: return .quiet
        }
    }

    /// Announces the downloads to come.
    public func plan(files: Int, totalBytes: Int64) {
        lock.lock(); defer { lock.unlock() }
        plannedFiles += files
        self.totalBytes += totalBytes
        if startTime == nil { startTime = clock() }
        if mode == .lines, files > 0 {
            emitLine("downloading \(files) file\(files == 1 ? "" : "s"), \(Self.formatBytes(totalBytes))")
        }
    }

    /// A handle through which one file's transfer reports.
    func file(named name: String, size: Int64) -> FileProgress {
        lock.lock(); defer { lock.unlock() }
        nextID += 1
        return FileProgress(reporter: self, id: nextID, name: name, size: size)
    }

    /// A message outside the bar (the bar is redrawn after it).
    public func note(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        guard mode != .quiet else { return }
        clearBar()
        emitLine(text)
    }

    /// Final line; the bar, if any, is left complete on screen.
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        guard let startTime, plannedFiles > 0 else { return }
        let elapsed = max(clock() - startTime, 1e-9)
        switch mode {
        case .bar:
            renderBar(now: clock())
            output("\n")
            barShown = false
        case .lines:
            break
        case .quiet:
            return
        }
        emitLine("fetched \(finishedFiles)/\(plannedFiles) files, \(Self.formatBytes(sessionBytes)) downloaded in "
               + "\(Self.formatDuration(elapsed)) (\(Self.formatBytes(Int64(Double(sessionBytes) / elapsed)))/s)")
    }

    // MARK: events from FileProgress (called with the lock not held)

    fileprivate func started(id: Int, name: String, size: Int64, existing: Int64) {
        lock.lock(); defer { lock.unlock() }
        active[id] = name
        doneBytes += existing
        if mode == .lines {
            if existing > 0 {
                emitLine("resuming \(name) at \(Self.formatBytes(existing)) of \(Self.formatBytes(size))")
            } else {
                emitLine("fetching \(name) (\(Self.formatBytes(size)))")
            }
        }
        render(force: false)
    }

    fileprivate func advanced(by bytes: Int64) {
        lock.lock(); defer { lock.unlock() }
        doneBytes += bytes
        sessionBytes += bytes
        render(force: false)
    }

    fileprivate func restarted(droppedBytes: Int64) {
        lock.lock(); defer { lock.unlock() }
        doneBytes -= droppedBytes
    }

    fileprivate func finished(id: Int, name: String) {
        lock.lock(); defer { lock.unlock() }
        active[id] = nil
        finishedFiles += 1
        if mode == .lines { emitLine("done \(name)") }
        render(force: true)
    }

    fileprivate func failed(id: Int, name: String, error: Error) {
        lock.lock(); defer { lock.unlock() }
        active[id] = nil
        if mode != .quiet {
            clearBar()
            emitLine("failed \(name): \(error)")
        }
        render(force: true)
    }

    // MARK: rendering (lock held)

    private func render(force: Bool) {
        let now = clock()
        if samples.isEmpty || now - samples[samples.count - 1].time >= 0.1 {
            samples.append((now, sessionBytes))
            if let first = samples.first, now - first.time > 10 {
                samples.removeAll { now - $0.time > 5 }
            }
        }
        switch mode {
        case .quiet:
            return
        case .bar:
            guard force || now - lastRender >= 0.1 else { return }
            renderBar(now: now)
        case .lines:
            guard now - lastRender >= lineInterval else { return }
            if lastRender == -Double.infinity {
                lastRender = now
                return
            }
            emitLine("progress " + Self.summary(done: doneBytes, total: totalBytes, rate: rate(now: now)))
        }
        lastRender = now
    }

    private func renderBar(now: Double) {
        let width = max(terminalWidth(), 40)
        var line = Self.bar(done: doneBytes, total: totalBytes, width: 24) + " "
            + Self.summary(done: doneBytes, total: totalBytes, rate: rate(now: now))
            + "  (\(finishedFiles)/\(plannedFiles) files)"
        if let name = active.values.sorted().first {
            line += " " + name + (active.count > 1 ? " +\(active.count - 1)" : "")
        }
        if line.count > width - 1 { line = String(line.prefix(width - 2)) + "…" }
        output("\r\u{1B}[2K" + line)
        barShown = true
    }

    private func emitLine(_ text: String) {
        output(text + "\n")
    }

    private func clearBar() {
        if barShown {
            output("\r\u{1B}[2K")
            barShown = false
        }
    }

    /// Bytes per second over the last ~5 s of samples (over the whole run while shorter).
    private func rate(now: Double) -> Double {
        let window = samples.filter { now - $0.time <= 5 }
        guard let first = window.first, let last = window.last, last.time - first.time >= 0.5 else {
            guard let startTime, now - startTime > 0 else { return 0 }
            return Double(sessionBytes) / (now - startTime)
        }
        return Double(last.bytes - first.bytes) / (last.time - first.time)
    }

    // MARK: formatting

    /// "42%  1.10 GB / 2.63 GB  85.3 MB/s  ETA 0:18"
    static func summary(done: Int64, total: Int64, rate: Double) -> String {
        let percent = total > 0 ? Int(Double(done) * 100 / Double(total)) : 100
        var text = "\(percent)%  \(formatBytes(done)) / \(formatBytes(total))  \(formatBytes(Int64(rate)))/s"
        if rate > 0, total > done {
            text += "  ETA " + formatDuration(Double(total - done) / rate)
        } else if total > done {
            text += "  ETA --:--"
        }
        return text
    }

    static func bar(done: Int64, total: Int64, width: Int) -> String {
        let fraction = total > 0 ? min(max(Double(done) / Double(total), 0), 1) : 1
        let filled = Int(fraction * Double(width))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    /// Decimal units, three significant digits: "999 B", "1.50 kB", "85.3 MB", "2.63 GB".
    public static func formatBytes(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while abs(value) >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let digits = abs(value) >= 100 ? 0 : (abs(value) >= 10 ? 1 : 2)
        return String(format: "%.\(digits)f %@", value, units[unit])
    }

    /// "0:05", "12:34", "1:02:03".
    public static func formatDuration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let total = Int(seconds.rounded())
        let hours = total / 3600, minutes = (total % 3600) / 60, secs = total % 60
        return hours > 0 ? String(format: "%d:%02d:%02d", hours, minutes, secs) : String(format: "%d:%02d", minutes, secs)
    }
}

/// One file's view of the reporter.
final class FileProgress {
    private let reporter: ProgressReporter
    private let id: Int
    let name: String
    let size: Int64

    fileprivate init(reporter: ProgressReporter, id: Int, name: String, size: Int64) {
        self.reporter = reporter
        self.id = id
        self.name = name
        self.size = size
    }

    func started(existingBytes: Int64) { reporter.started(id: id, name: name, size: size, existing: existingBytes) }
    func advanced(by bytes: Int64) { reporter.advanced(by: bytes) }
    func restarted(droppedBytes: Int64) { reporter.restarted(droppedBytes: droppedBytes) }
    func finished() { reporter.finished(id: id, name: name) }
    func failed(_ error: Error) { reporter.failed(id: id, name: name, error: error) }
}

/// Seconds from a monotonic clock.
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// Width of the terminal on stderr, 100 when unknown.
public func terminalColumns() -> Int {
    var size = winsize()
    if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    return 100
}
