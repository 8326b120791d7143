import Foundation
import XCTest
@testable import ModelStore

/// Reuse of what is on disk, offline mode, plain folders, check(), and the CLI entry point.
final class StoreTests: XCTestCase {
    private let weights = randomBytes(64_000, seed: 5)
    private let config = Data(#"{"a": 1}"#.utf8)

    private func spec(_ name: String, repo: String, files: [FileSpec], gated: Bool = false) -> ModelSpec {
        ModelSpec(name: name, repo: repo, revision: "main", files: files, purpose: "test",
                  licence: LicenceInfo(name: "MIT", verified: true, source: "test"),
                  gating: gated ? .gated("test") : .open, approxDownloadBytes: 64_000,
                  components: [WeightComponent(name: "net", parameters: 16_000, gpuDType: .fp32)],
                  inDefaultPipeline: true)
    }

    func testSecondFetchMakesNoRequest() throws {
        let fixture = try StoreFixture()
        fixture.hub.addRepo("org/model", files: ["config.json": config, "model.safetensors": weights], lfs: ["model.safetensors"])
        let target = FetchTarget(spec: spec("m", repo: "org/model", files: [.file("config.json"), .file("model.safetensors")]))
        try fixture.fetch([target])
        fixture.hub.clearLog()

        let report = try fixture.fetch([target])
        XCTAssertEqual(fixture.hub.requests.count, 0, "a complete cached snapshot must not touch the network")
        XCTAssertEqual(report.entries.first?.alreadyPresent, true)
    }

    /// A cache written by huggingface_hub (built by hand here: refs/main, blobs, relative symlinks).
    func testPrePopulatedPythonCacheIsUsedInPlace() throws {
        let fixture = try StoreFixture()
        let commit = String(repeating: "ab", count: 20)
        let folder = fixture.cache.repoFolder("org/prepopulated")
        try createDirectory(folder + "/refs")
        try Data(commit.utf8).write(to: URL(fileURLWithPath: folder + "/refs/main"))
        try createDirectory(folder + "/blobs")
        let blob = FakeHub.sha256(weights)
        try weights.write(to: URL(fileURLWithPath: folder + "/blobs/" + blob))
        try createDirectory(folder + "/snapshots/" + commit + "/ckpts")
        try FileManager.default.createSymbolicLink(atPath: folder + "/snapshots/" + commit + "/ckpts/w.safetensors",
                                                   withDestinationPath: "../../../blobs/" + blob)

        let model = spec("pre", repo: "org/prepopulated", files: [.file("ckpts/w.safetensors")])
        let report = try fixture.fetch([FetchTarget(spec: model)])
        XCTAssertEqual(fixture.hub.requests.count, 0)
        XCTAssertEqual(report.entries.first?.location, ModelLocation(kind: .hubCache, path: folder + "/snapshots/" + commit, commit: commit))

        let status = fixture.store().status(of: model)
        XCTAssertTrue(status.present)
        XCTAssertEqual(contents(try XCTUnwrap(status.location).path(of: "ckpts/w.safetensors")), weights)
    }

    func testDanglingSnapshotLinkIsNotPresent() throws {
        let fixture = try StoreFixture()
        let commit = String(repeating: "cd", count: 20)
        let folder = fixture.cache.repoFolder("org/dangling")
        try createDirectory(folder + "/refs")
        try Data(commit.utf8).write(to: URL(fileURLWithPath: folder + "/refs/main"))
        try createDirectory(folder + "/snapshots/" + commit)
        try FileManager.default.createSymbolicLink(atPath: folder + "/snapshots/" + commit + "/model.safetensors",
                                                   withDestinationPath: "../../blobs/" + String(repeating: "0", count: 64))
        let status = fixture.store().status(of: spec("d", repo: "org/dangling", files: [.file("model.safetensors")]))
        XCTAssertFalse(status.present)
        XCTAssertEqual(status.missing, ["model.safetensors"])
    }

    func testOfflineReportsWhatIsMissingWithoutTouchingTheNetwork() throws {
        let fixture = try StoreFixture()
        fixture.hub.addRepo("org/model", files: ["model.safetensors": weights], lfs: ["model.safetensors"])
        let model = spec("offline-model", repo: "org/model", files: [.file("model.safetensors")])
        let error = fixture.expectError { try fixture.fetch([FetchTarget(spec: model)], store: fixture.store(offline: true)) }
        guard case .offlineMissing(let lines)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].contains("model.safetensors"), lines[0])
        XCTAssertTrue(lines[0].contains("gen3d fetch --model offline-model"), lines[0])
        XCTAssertEqual(fixture.hub.requests.count, 0)

        try fixture.fetch([FetchTarget(spec: model)])
        fixture.hub.clearLog()
        let report = try fixture.fetch([FetchTarget(spec: model)], store: fixture.store(offline: true))
        XCTAssertEqual(report.entries.first?.alreadyPresent, true)
        XCTAssertEqual(fixture.hub.requests.count, 0)
    }

    func testPlainFolderDestinationAndModelsDirReuse() throws {
        let fixture = try StoreFixture()
        fixture.hub.addRepo("org/model", files: ["config.json": config, "w/model.safetensors": weights], lfs: ["w/model.safetensors"])
        let dest = fixture.directory.path + "/plain"

        try fixture.fetch([FetchTarget(repo: "org/model")], destination: .folder(dest))
        XCTAssertEqual(contents(dest + "/w/model.safetensors"), weights)
        XCTAssertNil(linkTarget(dest + "/w/model.safetensors"), "a plain folder holds real files")
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.cacheRoot), "nothing goes to the hub cache")

        // A registry-style entry fetched with --dest lands in DIR/ORG/NAME, and a store with that folder as
        // --models-dir finds it in place.
        let model = spec("m", repo: "org/model", files: [.file("config.json"), .glob("w/*.safetensors")])
        try fixture.fetch([FetchTarget(spec: model)], destination: .folder(dest))
        XCTAssertEqual(contents(dest + "/org/model/w/model.safetensors"), weights)
        fixture.hub.clearLog()
        let status = fixture.store(modelsDirectories: [dest]).status(of: model)
        XCTAssertEqual(status.location, ModelLocation(kind: .folder, path: dest + "/org/model", commit: nil))
        try fixture.fetch([FetchTarget(spec: model)], store: fixture.store(modelsDirectories: [dest]))
        XCTAssertEqual(fixture.hub.requests.count, 0)
    }

    func testPlainFolderCopiesABlobAlreadyInTheCache() throws {
        let fixture = try StoreFixture()
        fixture.hub.addRepo("org/model", files: ["model.safetensors": weights], lfs: ["model.safetensors"])
        try fixture.fetch([FetchTarget(repo: "org/model")])
        fixture.hub.clearLog()
        let dest = fixture.directory.path + "/copy"
        // The folder is not a models-dir, so the cached snapshot counts as present: nothing is copied or fetched.
        let report = try fixture.fetch([FetchTarget(repo: "org/model")], destination: .folder(dest))
        XCTAssertEqual(report.entries.first?.alreadyPresent, true)
        XCTAssertEqual(fixture.hub.requests.count, 0)

        // A new revision adds a file the cache lacks: the weights are copied from the cached blob and only
        // the new small file is downloaded.
        fixture.hub.addRepo("org/model", files: ["model.safetensors": weights, "extra.json": config],
                            lfs: ["model.safetensors"], commit: String(repeating: "ef", count: 20))
        try fixture.fetch([FetchTarget(repo: "org/model", includes: ["model.safetensors", "extra.json"])],
                          destination: .folder(dest))
        XCTAssertEqual(contents(dest + "/model.safetensors"), weights)
        XCTAssertEqual(contents(dest + "/extra.json"), config)
        XCTAssertFalse(fixture.hub.requests.contains { $0.server == "cdn" })
        XCTAssertFalse(fixture.hub.requests.contains { $0.request.path.hasSuffix("/model.safetensors") })
    }

    func testCheckSaysPresentOrMissingWithTheFetchCommand() throws {
        let fixture = try StoreFixture()
        fixture.hub.addRepo("org/model", files: ["model.safetensors": weights], lfs: ["model.safetensors"])
        let present = spec("present-model", repo: "org/model", files: [.file("model.safetensors")])
        let missing = spec("missing-model", repo: "org/other", files: [.file("a.safetensors"), .glob("b/*.json")], gated: true)
        try fixture.fetch([FetchTarget(spec: present)])

        let report = fixture.store().check(models: [present, missing])
        XCTAssertFalse(report.ready)
        XCTAssertEqual(report.models[0].present, true)
        XCTAssertEqual(report.models[0].location?.kind, .hubCache)
        XCTAssertNil(report.models[0].fetchCommand)
        XCTAssertEqual(report.models[1].present, false)
        XCTAssertEqual(report.models[1].fetchCommand, "gen3d fetch --model missing-model")
        XCTAssertEqual(report.models[1].missing, ["a.safetensors", "b/*.json"])
        XCTAssertTrue(report.summary.contains("run `gen3d fetch --model missing-model`"), report.summary)
        XCTAssertTrue(report.summary.contains("gated"), report.summary)

        XCTAssertEqual(try fixture.store().requireLocation(of: present), report.models[0].location)
        XCTAssertThrowsError(try fixture.store().requireLocation(of: missing)) {
            XCTAssertEqual($0 as? ModelStoreError, .modelMissing(name: "missing-model", repo: "org/other",
                                                                 missing: ["a.safetensors", "b/*.json"],
                                                                 fetchCommand: "gen3d fetch --model missing-model"))
        }

        // /health serialises the report.
        let json = try JSONEncoder().encode(report)
        let decoded = try JSONDecoder().decode(StoreReport.self, from: json)
        XCTAssertEqual(decoded, report)
    }

    func testCheckOfTheRegistryPipelineOnAnEmptyCache() throws {
        let fixture = try StoreFixture()
        let report = fixture.store().check(pipeline: .default)
        XCTAssertEqual(report.pipeline, "default")
        XCTAssertEqual(report.models.map(\.name), ModelRegistry.models(for: .default).map(\.name))
        XCTAssertTrue(report.models.allSatisfy { !$0.present && $0.fetchCommand == "gen3d fetch --model \($0.name)" })
        XCTAssertEqual(fixture.hub.requests.count, 0)
    }

    func testShardIndexNamesEveryShardThatMustBePresent() throws {
        let directory = try TemporaryDirectory()
        let root = directory.path + "/transformer"
        try createDirectory(root)
        let index = #"{"metadata": {}, "weight_map": {"a": "m-00001-of-00002.safetensors", "b": "m-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: URL(fileURLWithPath: root + "/m.safetensors.index.json"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/m-00001-of-00002.safetensors"))
        let specs: [FileSpec] = [.glob("transformer/*.json"), .glob("transformer/*.safetensors")]
        XCTAssertEqual(FileSelection.missing(specs, in: directory.path), ["transformer/m-00002-of-00002.safetensors"])
        try Data("y".utf8).write(to: URL(fileURLWithPath: root + "/m-00002-of-00002.safetensors"))
        XCTAssertEqual(FileSelection.missing(specs, in: directory.path), [])
    }

    // MARK: FetchCommand (the CLI entry point) with the environment the user would set

    func testFetchCommandHonoursHFEndpointAndTheTokenFile() async throws {
        let fixture = try StoreFixture()
        let lgm = try XCTUnwrap(ModelRegistry.model(named: "lgm"))
        fixture.hub.addRepo(lgm.repo, files: ["model_fp16_fixrot.safetensors": weights, "README.md": config],
                            lfs: ["model_fp16_fixrot.safetensors"], gated: true)
        let hfHome = fixture.directory.path + "/hf-home"
        try createDirectory(hfHome)
        try Data((fixture.hub.validToken + "\n").utf8).write(to: URL(fileURLWithPath: hfHome + "/token"))
        let environment = ["HOME": fixture.directory.path, "HF_HOME": hfHome, "HF_ENDPOINT": fixture.hub.endpoint + "/",
                           "no_proxy": "127.0.0.1"]
        var options = FetchOptions()
        options.models = ["lgm"]
        options.progress = .lines
        let output = OutputCollector()
        let report = try await FetchCommand.run(options, environment: environment, output: output.write)

        XCTAssertFalse(fixture.hub.requests.isEmpty, "HF_ENDPOINT must send the requests to the fake hub")
        for logged in fixture.hub.requests where logged.server == "hub" {
            XCTAssertEqual(logged.request.headers["authorization"], "Bearer \(fixture.hub.validToken)")
        }
        XCTAssertFalse(fixture.hub.requests.contains { $0.request.path.hasSuffix("README.md") }, "only registry files")
        let location = try XCTUnwrap(report.entries.first?.location)
        XCTAssertTrue(location.path.hasPrefix(hfHome + "/hub/models--ashawkey--LGM/snapshots/"), location.path)
        XCTAssertEqual(contents(location.path(of: "model_fp16_fixrot.safetensors")), weights)
        // Licence and gating are shown before the download starts.
        let text = output.all
        let licenceLine = try XCTUnwrap(text.range(of: "licence MIT"))
        let fetchLine = try XCTUnwrap(text.range(of: "fetching lgm/model_fp16_fixrot.safetensors"))
        XCTAssertLessThan(licenceLine.lowerBound, fetchLine.lowerBound, text)
        XCTAssertTrue(text.contains("unpinned"), text)
    }

    func testFetchCommandOfflineFromTheEnvironment() async throws {
        let fixture = try StoreFixture()
        let environment = ["HOME": fixture.directory.path, "HF_HOME": fixture.directory.path + "/hf",
                           "HF_ENDPOINT": fixture.hub.endpoint, "HF_HUB_OFFLINE": "1"]
        var options = FetchOptions()
        options.models = ["birefnet"]
        do {
            try await FetchCommand.run(options, environment: environment, output: { _ in })
            XCTFail("expected offline error")
        } catch let error as ModelStoreError {
            XCTAssertTrue(error.description.contains("gen3d fetch --model birefnet"), error.description)
            XCTAssertTrue(error.description.contains("model.safetensors"), error.description)
        }
        XCTAssertEqual(fixture.hub.requests.count, 0)
    }
}
