import Foundation
import HTTPServer
import XCTest

/// `gen3d serve` as a real process: nonsense options fail at once (before any model loads) with the
/// option's name and a non-zero exit; with a key file the daemon wants the key, and /health shows
/// model ids, never host paths. Runs the binary SwiftPM built next to this test bundle.
final class ServeCommandTests: XCTestCase {
    private struct Finished {
        let status: Int32
        let output: String
    }

    private struct MissingBinary: Error, CustomStringConvertible {
        let description = "the gen3d binary was not found next to the test bundle (build it with `swift build`)"
    }

    /// The binary SwiftPM built; its absence fails the test (never a skip).
    private func gen3d() throws -> URL {
        let candidates = [Bundle(for: Self.self).bundleURL.deletingLastPathComponent(),
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        for dir in candidates {
            let url = dir.appendingPathComponent("gen3d")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw MissingBinary()
    }

    /// Runs `gen3d args` to its end (killed after `timeout` seconds).
    private func run(_ args: [String], timeout: TimeInterval = 60) throws -> Finished {
        let process = Process()
        process.executableURL = try gen3d()
        process.arguments = args
        process.currentDirectoryURL = repositoryRoot()
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = Locked(Data())
        let reader = Thread {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            output.mutate { $0 = data }
        }
        reader.start()
        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            XCTFail("gen3d \(args.joined(separator: " ")) did not exit within \(timeout) s")
        }
        process.waitUntilExit()
        while !reader.isFinished { usleep(1_000) }
        return Finished(status: process.terminationStatus, output: String(decoding: output.value, as: UTF8.self))
    }

    func testNonsenseOptionsFailBeforeAnyModelLoads() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("serve-options-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let emptyKey = dir.appendingPathComponent("empty-key")
        try Data("\n".utf8).write(to: emptyKey)

        // (arguments, the text the error must contain)
        let cases: [([String], String)] = [
            (["--max-body-mb", "9999999999999"], "--max-body-mb"),   // overflowed MB -> bytes and trapped
            (["--max-body-mb", "0"], "--max-body-mb"),
            (["--queue=-1"], "--queue"),
            (["--queue", "99999999999"], "--queue"),
            (["--read-timeout", "inf"], "--read-timeout"),
            (["--read-timeout", "nan"], "--read-timeout"),
            (["--read-timeout", "0"], "--read-timeout"),
            (["--write-timeout=-5"], "--write-timeout"),
            (["--grace", "1e300"], "--grace"),                        // seconds -> nanoseconds overflowed
            (["--grace=-1"], "--grace"),
            (["--workers", "0"], "--workers"),
            (["--workers", "100000"], "--workers"),
            (["--port", "70000"], "--port"),
            (["--port=-1"], "--port"),
            (["--host", ""], "--host"),
            (["--cap-gib=-3"], "--cap-gib"),
            (["--cap-gib", "inf"], "--cap-gib"),
            (["--time-budget=-1"], "--time-budget"),
            (["--time-budget", "nan"], "--time-budget"),
            (["--min-score", "2"], "--min-score"),
            (["--flux-size", "7"], "--flux-size"),
            (["--flux-size", "500"], "--flux-size"),
            (["--flux-size", "9999999999999999"], "--flux-size"),
            (["--preset", "turbo"], "preset"),
            (["--inject-oom-jobs=-2"], "--inject-oom-jobs"),
            (["--api-key-file", dir.appendingPathComponent("absent").path], "no such file"),
            (["--api-key-file", emptyKey.path], "empty"),
            (["--api-key-file", dir.path], "directory"),
            (["--protect-health"], "--protect-health needs --api-key-file"),
        ]
        for (args, expected) in cases {
            let finished = try run(["serve", "--smoke", "--port", "0"] + args)
            let label = args.joined(separator: " ")
            XCTAssertNotEqual(finished.status, 0, "\(label): exited 0")
            XCTAssertTrue(finished.output.contains(expected), "\(label): \(finished.output)")
            XCTAssertFalse(finished.output.contains("loading the pipeline"), "\(label) loaded models first")
            XCTAssertFalse(finished.output.contains("Fatal error"), "\(label) trapped: \(finished.output)")
        }
    }

    /// The smoke daemon with a key file: 401 without the key, 200 with it, /health open and free of
    /// host paths; SIGTERM stops it cleanly.
    func testDaemonWithKeyFileAndPathFreeHealth() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("serve-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let keyFile = dir.appendingPathComponent("key")
        let key = "daemon-key-\(UInt64.random(in: 1...UInt64.max))"
        try Data("\(key)\n".utf8).write(to: keyFile)

        let process = Process()
        process.executableURL = try gen3d()
        process.arguments = ["serve", "--smoke", "--device", "cpu", "--port", "0", "--api-key-file", keyFile.path]
        process.currentDirectoryURL = repositoryRoot()
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = Locked(Data())
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.mutate { $0.append(data) }
        }
        try process.run()
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
            pipe.fileHandleForReading.readabilityHandler = nil
        }
        var text: String { String(decoding: output.value, as: UTF8.self) }

        var port: Int?
        let deadline = Date(timeIntervalSinceNow: 120)
        while port == nil, process.isRunning, Date() < deadline {
            if let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(text[range].split(separator: ":").last ?? "")
            }
            usleep(20_000)
        }
        let bound = try XCTUnwrap(port, "the daemon did not start: \(text)")

        let health = try HTTPClient(port: bound, timeout: 10).request(path: "/health")
        XCTAssertEqual(health.status, 200, health.text)
        let models = try XCTUnwrap(health.json?["models"] as? [String: String], health.text)
        XCTAssertEqual(models["smoke"], "assets/smoke (tiny random-weight networks)")
        // No absolute host path anywhere in the public answer (the start-up log has them).
        let root = repositoryRoot().path
        XCTAssertFalse(health.text.contains(root), health.text)
        XCTAssertFalse(health.text.replacingOccurrences(of: "\\/", with: "/").contains(root), health.text)
        XCTAssertTrue(text.contains("from \(root)/assets/smoke"), text)

        let form = Data(FormURLEncoded.encode([("prompt", "a red chair")]).utf8)
        let contentType = ("Content-Type", "application/x-www-form-urlencoded")
        let refused = try HTTPClient(port: bound, timeout: 10).request(method: "POST", path: "/generate/",
                                                                       headers: [contentType], body: form)
        XCTAssertEqual(refused.status, 401, refused.text)
        XCTAssertEqual(refused.headers["WWW-Authenticate"], "Bearer")
        let served = try HTTPClient(port: bound, timeout: 120).request(
            method: "POST", path: "/generate/", headers: [contentType, ("X-API-Key", key)], body: form)
        XCTAssertEqual(served.status, 200, served.text)
        XCTAssertEqual(served.headers["X-Smoke-Pipeline"], "true")
        XCTAssertFalse(served.body.isEmpty)

        process.terminate()
        let stopBy = Date(timeIntervalSinceNow: 30)
        while process.isRunning, Date() < stopBy { usleep(10_000) }
        XCTAssertFalse(process.isRunning, "SIGTERM did not stop the daemon")
        if !process.isRunning { XCTAssertEqual(process.terminationStatus, 0, text) }
    }
}

/// A value shared between test threads.
private final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
    func mutate(_ body: (inout Value) -> Void) {
        lock.lock()
        body(&stored)
        lock.unlock()
    }
}
