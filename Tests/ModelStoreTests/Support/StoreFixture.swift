import Foundation
import XCTest
@testable import ModelStore

/// A fake hub, a temporary cache folder, and helpers to fetch from one into the other.
final class StoreFixture {
    let hub: FakeHub
    let directory: TemporaryDirectory
    let output = OutputCollector()

    init() throws {
        hub = try FakeHub()
        directory = try TemporaryDirectory()
    }

    deinit {
        hub.stop()
    }

    var cacheRoot: String { directory.path + "/hub" }
    var cache: HFCache { HFCache(root: cacheRoot) }

    func configuration(token: String? = nil, offline: Bool = false, retries: Int = 3, parallel: Int = 4) -> HubConfiguration {
        var configuration = HubConfiguration(endpoint: hub.endpoint, token: token, offline: offline, cacheDirectory: cacheRoot)
        configuration.maxRetries = retries
        configuration.retryBaseDelay = 0.01
        configuration.parallelDownloads = parallel
        configuration.noProxy = "127.0.0.1"
        return configuration
    }

    func store(token: String? = nil, offline: Bool = false, retries: Int = 3, parallel: Int = 4,
               modelsDirectories: [String] = []) -> ModelStore {
        ModelStore(hub: configuration(token: token, offline: offline, retries: retries, parallel: parallel),
                   modelsDirectories: modelsDirectories)
    }

    func reporter(_ mode: ProgressReporter.Mode = .lines) -> ProgressReporter {
        ProgressReporter(mode: mode, output: output.write)
    }

    @discardableResult
    func fetch(_ targets: [FetchTarget], store: ModelStore? = nil, destination: FetchDestination = .hubCache) throws -> FetchReport {
        try (store ?? self.store()).fetch(targets, destination: destination, reporter: reporter())
    }

    /// Asserts `body` throws a ModelStoreError and returns it.
    func expectError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> ModelStoreError? {
        do {
            try body()
            XCTFail("expected an error", file: file, line: line)
            return nil
        } catch let error as ModelStoreError {
            return error
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
            return nil
        }
    }
}

/// The content of a file, following symlinks.
func contents(_ path: String) -> Data? {
    FileManager.default.contents(atPath: path)
}

/// The target of a symlink, nil when `path` is not one.
func linkTarget(_ path: String) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: path)
}
