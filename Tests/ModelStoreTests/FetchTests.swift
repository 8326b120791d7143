import Foundation
import XCTest
@testable import ModelStore

/// Downloads from the fake hub: listing, cache layout, redirects, resume, verification, errors.
final class FetchTests: XCTestCase {
    private let config = Data(#"{"hidden_size": 8}"#.utf8)
    private let weights = randomBytes(300_000, seed: 1)
    private let tokenizer = Data(#"{"model": {"type": "BPE"}}"#.utf8)

    private func addSmallRepo(_ fixture: StoreFixture, id: String = "org/small", gated: Bool = false) {
        fixture.hub.addRepo(id, files: ["config.json": config, "model.safetensors": weights, "sub/dir/tokenizer.json": tokenizer],
                            lfs: ["model.safetensors"], gated: gated)
    }

    func testListingAndDownloadIntoHubCacheLayout() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        fixture.hub.setTreePageSize(2)   // the listing spans several pages joined by Link headers
        let report = try fixture.fetch([FetchTarget(repo: "org/small")])

        let commit = try XCTUnwrap(fixture.hub.repo("org/small")?.commit)
        let repoFolder = fixture.cache.repoFolder("org/small")
        XCTAssertEqual(contents(repoFolder + "/refs/main").map { String(decoding: $0, as: UTF8.self) }, commit)
        let snapshot = repoFolder + "/snapshots/" + commit
        XCTAssertEqual(report.entries.first?.location.path, snapshot)
        XCTAssertEqual(report.entries.first?.fetchedFiles, 3)

        // Blobs are named like huggingface_hub names them: LFS sha256, git blob id for small files.
        let weightsBlob = FakeHub.sha256(weights)
        let configBlob = FakeHub.gitBlobID(config)
        XCTAssertEqual(contents(repoFolder + "/blobs/" + weightsBlob), weights)
        XCTAssertEqual(contents(repoFolder + "/blobs/" + configBlob), config)
        XCTAssertEqual(linkTarget(snapshot + "/model.safetensors"), "../../blobs/" + weightsBlob)
        XCTAssertEqual(linkTarget(snapshot + "/sub/dir/tokenizer.json"), "../../../../blobs/" + FakeHub.gitBlobID(tokenizer))
        XCTAssertEqual(contents(snapshot + "/model.safetensors"), weights)
        XCTAssertEqual(contents(snapshot + "/sub/dir/tokenizer.json"), tokenizer)

        let requests = fixture.hub.requests
        XCTAssertEqual(requests.filter { $0.request.path.contains("/tree/") }.count, 3, "3 files + 2 directories in pages of 2")
        XCTAssertEqual(requests.filter { $0.server == "cdn" }.count, 1, "the LFS file comes from the CDN")
        XCTAssertTrue(requests.contains { $0.request.path == "/org/small/resolve/\(commit)/model.safetensors" },
                      "files are resolved at the commit, not the moving branch")
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoFolder + "/blobs/" + weightsBlob + ".incomplete"))
    }

    func testRedirectToCDNDropsAuthorizationHeader() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture, id: "org/gated", gated: true)
        try fixture.fetch([FetchTarget(repo: "org/gated")], store: fixture.store(token: fixture.hub.validToken))

        let hubRequests = fixture.hub.requests.filter { $0.server == "hub" }
        let cdnRequests = fixture.hub.requests.filter { $0.server == "cdn" }
        XCTAssertFalse(hubRequests.isEmpty)
        XCTAssertEqual(cdnRequests.count, 1)
        for logged in hubRequests {
            XCTAssertEqual(logged.request.headers["authorization"], "Bearer \(fixture.hub.validToken)", logged.request.target)
        }
        XCTAssertNil(cdnRequests[0].request.headers["authorization"], "the token must not leak to the CDN host")
    }

    func testCutTransferIsResumedWithRange() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        fixture.hub.cut("model.safetensors", after: 100_000)
        try fixture.fetch([FetchTarget(repo: "org/small")])

        let cdn = fixture.hub.requests.filter { $0.server == "cdn" }
        XCTAssertEqual(cdn.count, 2)
        XCTAssertNil(cdn[0].request.headers["range"])
        XCTAssertEqual(cdn[1].request.headers["range"], "bytes=100000-")
        let commit = try XCTUnwrap(fixture.hub.repo("org/small")?.commit)
        XCTAssertEqual(contents(fixture.cache.snapshotFolder(repo: "org/small", commit: commit) + "/model.safetensors"), weights)
    }

    func testInterruptedDownloadResumesInALaterRun() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        fixture.hub.cut("model.safetensors", after: 120_000)
        let error = fixture.expectError { try fixture.fetch([FetchTarget(repo: "org/small")], store: fixture.store(retries: 0)) }
        guard case .transport(_, let code, _)? = error else { return XCTFail("expected a transport error, got \(String(describing: error))") }
        XCTAssertEqual(code, 18, "CURLE_PARTIAL_FILE")
        let partial = fixture.cache.incompletePath(repo: "org/small", blob: FakeHub.sha256(weights))
        XCTAssertEqual(contents(partial)?.count, 120_000)

        fixture.hub.clearLog()
        try fixture.fetch([FetchTarget(repo: "org/small")])
        let cdn = fixture.hub.requests.filter { $0.server == "cdn" }
        XCTAssertEqual(cdn.map { $0.request.headers["range"] }, ["bytes=120000-"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial))
        let commit = try XCTUnwrap(fixture.hub.repo("org/small")?.commit)
        XCTAssertEqual(contents(fixture.cache.snapshotFolder(repo: "org/small", commit: commit) + "/model.safetensors"), weights)
    }

    func testServerIgnoringRangeRestartsFromTheStart() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        fixture.hub.setIgnoreRange(true)
        let partial = fixture.cache.incompletePath(repo: "org/small", blob: FakeHub.sha256(weights))
        try createDirectory((partial as NSString).deletingLastPathComponent)
        try weights.prefix(50_000).write(to: URL(fileURLWithPath: partial))

        try fixture.fetch([FetchTarget(repo: "org/small")])
        XCTAssertEqual(fixture.hub.requests.filter { $0.server == "cdn" }.first?.request.headers["range"], "bytes=50000-")
        XCTAssertEqual(contents(fixture.cache.blobPath(repo: "org/small", blob: FakeHub.sha256(weights))), weights)
    }

    func testWrongChecksumIsRejectedAndNotKept() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        fixture.hub.corruptContent(of: "model.safetensors")
        let error = fixture.expectError { try fixture.fetch([FetchTarget(repo: "org/small")]) }
        guard case .checksumMismatch(let repo, let file, let expected, _)? = error else {
            return XCTFail("expected a checksum mismatch, got \(String(describing: error))")
        }
        XCTAssertEqual(repo, "org/small")
        XCTAssertEqual(file, "model.safetensors")
        XCTAssertEqual(expected, "sha256:" + FakeHub.sha256(weights))

        let commit = try XCTUnwrap(fixture.hub.repo("org/small")?.commit)
        let snapshot = fixture.cache.snapshotFolder(repo: "org/small", commit: commit)
        let blob = fixture.cache.blobPath(repo: "org/small", blob: FakeHub.sha256(weights))
        XCTAssertNil(linkTarget(snapshot + "/model.safetensors"), "the bad file must not appear in the snapshot")
        XCTAssertFalse(FileManager.default.fileExists(atPath: blob))
        XCTAssertFalse(FileManager.default.fileExists(atPath: blob + ".incomplete"))
        XCTAssertNil(fixture.store().locate(FetchTarget(repo: "org/small", includes: ["model.safetensors"])))
        // The small files verified fine and are in place.
        XCTAssertEqual(contents(snapshot + "/config.json"), config)
    }

    func testCorruptLeftoverIsDeletedAndTheNextRunSucceeds() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        let partial = fixture.cache.incompletePath(repo: "org/small", blob: FakeHub.sha256(weights))
        try createDirectory((partial as NSString).deletingLastPathComponent)
        try randomBytes(40_000, seed: 99).write(to: URL(fileURLWithPath: partial))   // not a prefix of the file

        let error = fixture.expectError { try fixture.fetch([FetchTarget(repo: "org/small")]) }
        guard case .checksumMismatch? = error else { return XCTFail("expected a checksum mismatch, got \(String(describing: error))") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial))
        try fixture.fetch([FetchTarget(repo: "org/small")])
        XCTAssertEqual(contents(fixture.cache.blobPath(repo: "org/small", blob: FakeHub.sha256(weights))), weights)
    }

    func testGatedRepoWithoutTokenGivesAClearMessage() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture, id: "org/gated", gated: true)
        let error = fixture.expectError { try fixture.fetch([FetchTarget(repo: "org/gated", includes: ["model.safetensors"])]) }
        guard case .accessDenied(let repo, let file, let status, let tokenSent, let message)? = error else {
            return XCTFail("expected access denied, got \(String(describing: error))")
        }
        XCTAssertEqual(repo, "org/gated")
        XCTAssertEqual(file, "model.safetensors")
        XCTAssertEqual(status, 401)
        XCTAssertFalse(tokenSent)
        XCTAssertTrue(message?.contains("restricted") ?? false)
        let text = error!.description
        XCTAssertTrue(text.contains("HF_TOKEN"), text)
        XCTAssertTrue(text.contains("https://huggingface.co/org/gated"), text)
        XCTAssertTrue(fixture.output.all.contains("gated and no token is set"), fixture.output.all)
    }

    func testGatedRepoWithRefusedTokenSaysTheTokenLacksAccess() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture, id: "org/gated", gated: true)
        let error = fixture.expectError {
            try fixture.fetch([FetchTarget(repo: "org/gated", includes: ["config.json"])], store: fixture.store(token: "hf_wrong"))
        }
        guard case .accessDenied(_, _, 403, true, _)? = error else {
            return XCTFail("expected a 403 with a token, got \(String(describing: error))")
        }
        XCTAssertTrue(error!.description.contains("token was sent but does not grant access"), error!.description)
    }

    func testMissingFileAndMissingRepoAreNotFound() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        fixture.hub.makeUnresolvable("config.json")
        let fileError = fixture.expectError { try fixture.fetch([FetchTarget(repo: "org/small", includes: ["config.json"])]) }
        guard case .notFound(let repo, _, let file, _)? = fileError else {
            return XCTFail("expected not found, got \(String(describing: fileError))")
        }
        XCTAssertEqual(repo, "org/small")
        XCTAssertEqual(file, "config.json")

        let repoError = fixture.expectError { try fixture.fetch([FetchTarget(repo: "org/absent")]) }
        guard case .notFound("org/absent", "main", nil, _)? = repoError else {
            return XCTFail("expected repo not found, got \(String(describing: repoError))")
        }
        XCTAssertTrue(repoError!.description.contains("repository org/absent or revision main not found"))

        let globError = fixture.expectError { try fixture.fetch([FetchTarget(repo: "org/small", includes: ["*.bin"])]) }
        guard case .noMatchingFiles("org/small", "main", ["*.bin"])? = globError else {
            return XCTFail("expected no matching files, got \(String(describing: globError))")
        }
    }

    func testOneFailingTargetDoesNotStopTheOthers() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        let error = fixture.expectError {
            try fixture.fetch([FetchTarget(repo: "org/absent"), FetchTarget(repo: "org/small")])
        }
        guard case .notFound? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertNotNil(fixture.store().locate(FetchTarget(repo: "org/small")))
    }

    func testParallelDownloadsOverlap() throws {
        let fixture = try StoreFixture()
        var files: [String: Data] = [:]
        for index in 0..<4 { files["shard-\(index).safetensors"] = randomBytes(20_000, seed: UInt64(10 + index)) }
        fixture.hub.addRepo("org/shards", files: files, lfs: Set(files.keys))
        fixture.hub.setBodyDelay(0.3)
        let start = monotonicSeconds()
        try fixture.fetch([FetchTarget(repo: "org/shards")], store: fixture.store(parallel: 4))
        let elapsed = monotonicSeconds() - start
        XCTAssertGreaterThanOrEqual(fixture.hub.maxConcurrentFileResponses, 2)
        XCTAssertLessThan(elapsed, 1.0, "4 x 0.3 s of server delay must overlap")
        for (path, content) in files {
            XCTAssertEqual(contents(fixture.cache.blobPath(repo: "org/shards", blob: FakeHub.sha256(content))), content, path)
        }
    }

    func testZeroByteFileNeedsNoTransfer() throws {
        let fixture = try StoreFixture()
        fixture.hub.addRepo("org/empty", files: ["empty.txt": Data(), "config.json": config])
        try fixture.fetch([FetchTarget(repo: "org/empty")])
        let commit = try XCTUnwrap(fixture.hub.repo("org/empty")?.commit)
        XCTAssertEqual(contents(fixture.cache.snapshotFolder(repo: "org/empty", commit: commit) + "/empty.txt"), Data())
        XCTAssertFalse(fixture.hub.requests.contains { $0.request.path.hasSuffix("/empty.txt") })
    }

    func testCancellationStopsAStalledTransfer() throws {
        let fixture = try StoreFixture()
        addSmallRepo(fixture)
        fixture.hub.setBodyDelay(3)
        let store = fixture.store()
        let reporter = fixture.reporter()
        let cancellation = CancellationFlag()
        let started = monotonicSeconds()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { cancellation.cancel() }
        XCTAssertThrowsError(try store.fetch([FetchTarget(repo: "org/small", includes: ["model.safetensors"])],
                                             destination: .hubCache, reporter: reporter, cancellation: cancellation)) {
            XCTAssertEqual($0 as? ModelStoreError, .cancelled)
        }
        XCTAssertLessThan(monotonicSeconds() - started, 2.5)
    }
}
