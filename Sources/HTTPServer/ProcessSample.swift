import Foundation

/// Resident memory and open descriptors of a process, read from Linux /proc (nil elsewhere).
public struct ProcessSample: Sendable {
    /// Seconds since the sampler started.
    public var time: Double
    public var rssBytes: Int
    public var openFDs: Int

    /// Nil when the process does not exist (or /proc is not there).
    public static func read(pid: Int32, time: Double = 0) -> ProcessSample? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
              let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return nil }
        return ProcessSample(time: time, rssBytes: kilobytes * 1024, openFDs: fds.count)
    }

    /// Least-squares slope of RSS over time, MiB per minute (0 with fewer than two samples).
    public static func rssSlopeMiBPerMinute(_ samples: [ProcessSample]) -> Double {
        guard samples.count >= 2 else { return 0 }
        let n = Double(samples.count)
        let meanT = samples.map(\.time).reduce(0, +) / n
        let meanR = samples.map { Double($0.rssBytes) }.reduce(0, +) / n
        var covariance = 0.0
        var variance = 0.0
        for sample in samples {
            covariance += (sample.time - meanT) * (Double(sample.rssBytes) - meanR)
            variance += (sample.time - meanT) * (sample.time - meanT)
        }
        guard variance > 0 else { return 0 }
        return covariance / variance * 60 / 1_048_576
    }
}

/// Samples a process every `interval` seconds on a background thread until `stop`.
final class ProcessSampler: @unchecked Sendable {
    private let pid: Int32
    private let interval: TimeInterval
    private let lock = NSLock()
    private var samples: [ProcessSample] = []
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(pid: Int32, interval: TimeInterval) {
        self.pid = pid
        self.interval = max(0.1, interval)
    }

    func start() {
        let started = uptimeNanoseconds()
        let thread = Thread { [self] in
            while true {
                let now = Double(uptimeNanoseconds() - started) / 1e9
                if let sample = ProcessSample.read(pid: pid, time: now) {
                    lock.lock()
                    samples.append(sample)
                    lock.unlock()
                }
                var waited = 0.0
                while waited < interval {
                    lock.lock()
                    let keepGoing = running
                    lock.unlock()
                    if !keepGoing {
                        finished.signal()
                        return
                    }
                    usleep(100_000)
                    waited += 0.1
                }
            }
        }
        thread.name = "loadtest-sampler"
        thread.start()
    }

    /// Stops sampling and returns the samples.
    func stop() -> [ProcessSample] {
        lock.lock()
        running = false
        lock.unlock()
        finished.wait()
        lock.lock()
        defer { lock.unlock() }
        return samples
    }
}
