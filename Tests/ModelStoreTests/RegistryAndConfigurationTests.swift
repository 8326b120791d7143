import Foundation
import XCTest
@testable import ModelStore

final class RegistryTests: XCTestCase {
    func testEveryEntryIsComplete() {
        XCTAssertEqual(Set(ModelRegistry.names).count, ModelRegistry.models.count, "names are unique")
        XCTAssertEqual(Set(ModelRegistry.models.map(\.repo)).count, ModelRegistry.models.count, "one entry per repo")
        for model in ModelRegistry.models {
            XCTAssertTrue(HubURL.isValidRepoID(model.repo), model.repo)
            XCTAssertFalse(model.files.isEmpty, model.name)
            XCTAssertGreaterThan(model.approxDownloadBytes, 0, model.name)
            XCTAssertFalse(model.components.isEmpty, model.name)
            XCTAssertGreaterThan(model.approxGPUWeightBytes, 0, model.name)
            XCTAssertFalse(model.licence.name.isEmpty, model.name)
            XCTAssertFalse(model.licence.source.isEmpty, model.name)
            // No commit hash could be verified: every entry says so instead of carrying an invented one.
            XCTAssertEqual(model.revision, "main", model.name)
            XCTAssertFalse(model.isPinned, model.name)
        }
    }

    func testEveryModelIDHasAnEntryAndEveryEntryAnID() {
        for id in ModelID.allCases { XCTAssertEqual(ModelRegistry.model(id)?.name, id.rawValue, "\(id)") }
        XCTAssertEqual(Set(ModelRegistry.names), Set(ModelID.allCases.map(\.rawValue)))
    }

    func testPipelines() {
        let defaults = Set(ModelRegistry.models(for: .default).map(\.name))
        let all = Set(ModelRegistry.models(for: .all).map(\.name))
        XCTAssertTrue(defaults.isSubset(of: all))
        XCTAssertEqual(all.count, ModelRegistry.models.count)
        XCTAssertEqual(defaults, ["trellis-image-large", "dinov2-large-reg", "flux1-schnell", "clip-convnext-large-d",
                                  "dinov2-small", "quality-scorer", "birefnet"])
        XCTAssertEqual(ModelRegistry.model(named: "ZhengPeng7/BiRefNet")?.name, "birefnet")
        XCTAssertTrue(ModelRegistry.model(named: "sd35-large-turbo")?.gating.isGated ?? false)
        XCTAssertTrue(ModelRegistry.model(named: "flux1-schnell")?.gating.isGated ?? false)
    }

    func testTrellisNeedsOnlyTheGaussianSubset() throws {
        let trellis = try XCTUnwrap(ModelRegistry.model(named: "trellis-image-large"))
        let listing = ["pipeline.json", "README.md"]
            + ["ss_flow_img_dit_L_16l8_fp16", "ss_dec_conv3d_16l8_fp16", "slat_flow_img_dit_L_64l8p2_fp16",
               "slat_dec_gs_swin8_B_64l8gs32_fp16", "slat_dec_mesh_swin8_B_64l8m256c_fp16", "slat_dec_rf_swin8_B_64l8r16_fp16"]
            .flatMap { ["ckpts/\($0).json", "ckpts/\($0).safetensors"] }
        let selected = try FileSelection.select(trellis.files, from: listing, repo: trellis.repo, revision: "main")
        XCTAssertEqual(selected.count, 9)
        XCTAssertFalse(selected.contains { $0.contains("mesh") || $0.contains("_rf_") || $0 == "README.md" })
    }

    func testFluxSelectionSkipsTheSingleFileCheckpoints() throws {
        let flux = try XCTUnwrap(ModelRegistry.model(named: "flux1-schnell"))
        let listing = [
            "README.md", "ae.safetensors", "flux1-schnell.safetensors", "model_index.json", "schnell_grid.jpeg",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json", "text_encoder/model.safetensors",
            "text_encoder_2/config.json", "text_encoder_2/model-00001-of-00002.safetensors",
            "text_encoder_2/model-00002-of-00002.safetensors", "text_encoder_2/model.safetensors.index.json",
            "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
            "tokenizer_2/special_tokens_map.json", "tokenizer_2/spiece.model", "tokenizer_2/tokenizer.json",
            "tokenizer_2/tokenizer_config.json",
            "transformer/config.json", "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
            "transformer/diffusion_pytorch_model-00002-of-00003.safetensors",
            "transformer/diffusion_pytorch_model-00003-of-00003.safetensors",
            "transformer/diffusion_pytorch_model.safetensors.index.json",
            "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
        ]
        let selected = try FileSelection.select(flux.files, from: listing, repo: flux.repo, revision: "main")
        XCTAssertFalse(selected.contains("flux1-schnell.safetensors"))
        XCTAssertFalse(selected.contains("ae.safetensors"))
        XCTAssertFalse(selected.contains("README.md"))
        XCTAssertFalse(selected.contains("schnell_grid.jpeg"))
        XCTAssertEqual(selected.count, listing.count - 4)
    }

    func testFirstOfPrefersTheEarlierName() throws {
        let specs: [FileSpec] = [.firstOf(["open_clip_model.safetensors", "open_clip_pytorch_model.bin"])]
        XCTAssertEqual(try FileSelection.select(specs, from: ["open_clip_pytorch_model.bin", "open_clip_model.safetensors"],
                                                repo: "r/r", revision: "main"), ["open_clip_model.safetensors"])
        XCTAssertEqual(try FileSelection.select(specs, from: ["open_clip_pytorch_model.bin"], repo: "r/r", revision: "main"),
                       ["open_clip_pytorch_model.bin"])
        XCTAssertThrowsError(try FileSelection.select(specs, from: ["x.bin"], repo: "r/r", revision: "main"))
    }

    func testListingEntriesAreValidated() throws {
        let lfs: [String: Any] = ["type": "file", "path": "w.safetensors", "size": 10, "oid": String(repeating: "1", count: 40),
                                  "lfs": ["oid": String(repeating: "a", count: 64), "size": 10, "pointerSize": 134]]
        XCTAssertEqual(try HubClient.remoteFile(from: lfs, url: "u"),
                       RemoteFile(path: "w.safetensors", size: 10, digest: .sha256(String(repeating: "a", count: 64))))
        XCTAssertNil(try HubClient.remoteFile(from: ["type": "directory", "path": "ckpts"], url: "u"))
        for badPath in ["../escape", "/abs", "a//b", "a/./b", ""] {
            let entry: [String: Any] = ["type": "file", "path": badPath, "size": 1, "oid": String(repeating: "1", count: 40)]
            XCTAssertThrowsError(try HubClient.remoteFile(from: entry, url: "u"), badPath)
        }
    }

    func testURLHelpers() {
        XCTAssertEqual(HubURL.encodePath("dir/a b+c.json"), "dir/a%20b%2Bc.json")
        XCTAssertEqual(HubURL.encodeComponent("refs/pr/1"), "refs%2Fpr%2F1")
        XCTAssertEqual(HubURL.nextLink(#"<https://h/api/models/a/b/tree/main?cursor=x>; rel="next""#), "https://h/api/models/a/b/tree/main?cursor=x")
        XCTAssertNil(HubURL.nextLink(#"<https://h/x>; rel="prev""#))
        XCTAssertTrue(HubURL.isValidRepoID("black-forest-labs/FLUX.1-schnell"))
        XCTAssertFalse(HubURL.isValidRepoID("no-slash"))
        XCTAssertFalse(HubURL.isValidRepoID("../etc"))
        XCTAssertEqual(FileExchange.rangeStart("bytes 100-199/200"), 100)
    }
}

final class ConfigurationTests: XCTestCase {
    func testEnvironmentResolution() throws {
        let directory = try TemporaryDirectory()
        var configuration = HubConfiguration.fromEnvironment(["HOME": directory.path])
        XCTAssertEqual(configuration.endpoint, "https://huggingface.co")
        XCTAssertEqual(configuration.cacheDirectory, directory.path + "/.cache/huggingface/hub")
        XCTAssertNil(configuration.token)
        XCTAssertFalse(configuration.offline)

        try createDirectory(directory.path + "/hf")
        try Data("  hf_from_file \n".utf8).write(to: URL(fileURLWithPath: directory.path + "/hf/token"))
        configuration = HubConfiguration.fromEnvironment(["HOME": directory.path, "HF_HOME": directory.path + "/hf",
                                                          "HF_ENDPOINT": "http://mirror.local:8080/", "HF_HUB_OFFLINE": "true"])
        XCTAssertEqual(configuration.endpoint, "http://mirror.local:8080")
        XCTAssertEqual(configuration.cacheDirectory, directory.path + "/hf/hub")
        XCTAssertEqual(configuration.token, "hf_from_file")
        XCTAssertEqual(configuration.tokenSource, directory.path + "/hf/token")
        XCTAssertTrue(configuration.offline)

        configuration = HubConfiguration.fromEnvironment(["HOME": directory.path, "HF_HOME": directory.path + "/hf",
                                                          "HF_TOKEN": "hf_env", "HF_HUB_CACHE": "/somewhere/hub",
                                                          "HF_HUB_OFFLINE": "0", "NO_PROXY": "localhost,.internal"])
        XCTAssertEqual(configuration.token, "hf_env", "HF_TOKEN wins over the token file")
        XCTAssertEqual(configuration.tokenSource, "HF_TOKEN")
        XCTAssertEqual(configuration.cacheDirectory, "/somewhere/hub")
        XCTAssertFalse(configuration.offline)
        XCTAssertEqual(configuration.noProxy, "localhost,.internal")

        configuration = HubConfiguration.fromEnvironment(["HOME": directory.path, "XDG_CACHE_HOME": "/xdg"])
        XCTAssertEqual(configuration.cacheDirectory, "/xdg/huggingface/hub")
    }

    func testFetchOptionsValidation() throws {
        var options = FetchOptions()
        XCTAssertEqual(try FetchCommand.targets(for: options).map(\.name), ModelRegistry.models(for: .default).map(\.name))

        options.models = ["lgm", "LGM", "ashawkey/LGM"]
        XCTAssertEqual(try FetchCommand.targets(for: options).map(\.name), ["lgm"], "duplicates collapse")

        options.pipeline = .all
        XCTAssertEqual(try FetchCommand.targets(for: options).count, ModelRegistry.models.count)

        options = FetchOptions()
        options.models = ["nope"]
        XCTAssertThrowsError(try FetchCommand.targets(for: options)) {
            XCTAssertTrue("\($0)".contains("unknown model 'nope'"))
        }

        options = FetchOptions()
        options.includes = ["*.json"]
        XCTAssertThrowsError(try FetchCommand.targets(for: options)) { XCTAssertTrue("\($0)".contains("--repo")) }

        options = FetchOptions()
        options.repo = "not a repo"
        XCTAssertThrowsError(try FetchCommand.targets(for: options)) { XCTAssertTrue("\($0)".contains("ORG/NAME")) }

        options = FetchOptions()
        options.repo = "org/name"
        options.revision = "v1.0"
        options.includes = ["*.json", "ckpts/*"]
        let target = try XCTUnwrap(try FetchCommand.targets(for: options).first)
        XCTAssertEqual(target.revision, "v1.0")
        XCTAssertEqual(target.files, [.glob("*.json"), .glob("ckpts/*")])
        XCTAssertNil(target.spec)

        options.models = ["lgm"]
        XCTAssertThrowsError(try FetchCommand.targets(for: options))
    }
}

final class ProgressTests: XCTestCase {
    func testFormatting() {
        XCTAssertEqual(ProgressReporter.formatBytes(999), "999 B")
        XCTAssertEqual(ProgressReporter.formatBytes(1_500), "1.50 kB")
        XCTAssertEqual(ProgressReporter.formatBytes(85_300_000), "85.3 MB")
        XCTAssertEqual(ProgressReporter.formatBytes(2_630_000_000), "2.63 GB")
        XCTAssertEqual(ProgressReporter.formatBytes(123_400_000_000), "123 GB")
        XCTAssertEqual(ProgressReporter.formatDuration(5), "0:05")
        XCTAssertEqual(ProgressReporter.formatDuration(754), "12:34")
        XCTAssertEqual(ProgressReporter.formatDuration(3723), "1:02:03")
        XCTAssertEqual(ProgressReporter.summary(done: 500_000_000, total: 1_000_000_000, rate: 50_000_000),
                       "50%  500 MB / 1.00 GB  50.0 MB/s  ETA 0:10")
        XCTAssertEqual(ProgressReporter.bar(done: 1, total: 4, width: 8), "[##......]")
    }

    /// Simulated transfer with a controlled clock: the bar shows rate and ETA; plain lines say what happens.
    func testBarAndLines() {
        var now = 0.0
        let barOutput = OutputCollector()
        let bar = ProgressReporter(mode: .bar, output: barOutput.write, clock: { now }, terminalWidth: { 200 })
        bar.plan(files: 1, totalBytes: 10_000_000)
        let file = bar.file(named: "repo/model.safetensors", size: 10_000_000)
        file.started(existingBytes: 0)
        for _ in 0..<20 {
            now += 0.25
            file.advanced(by: 250_000)   // 1 MB/s
        }
        let frames = barOutput.all.components(separatedBy: "\r\u{1B}[2K").filter { !$0.isEmpty }
        let last = frames.last ?? ""
        XCTAssertTrue(last.hasPrefix("[############............] 50%  5.00 MB / 10.0 MB  1.00 MB/s  ETA 0:05"), last)
        XCTAssertTrue(last.contains("repo/model.safetensors"), last)
        file.finished()
        bar.finish()
        XCTAssertTrue(barOutput.all.hasSuffix("\nfetched 1/1 files, 5.00 MB downloaded in 0:05 (1.00 MB/s)\n"), barOutput.all)

        now = 0
        let lineOutput = OutputCollector()
        let lines = ProgressReporter(mode: .lines, output: lineOutput.write, clock: { now }, lineInterval: 1)
        lines.plan(files: 1, totalBytes: 4_000_000)
        let resumed = lines.file(named: "r/w.bin", size: 4_000_000)
        resumed.started(existingBytes: 1_000_000)
        for _ in 0..<6 {
            now += 0.5
            resumed.advanced(by: 500_000)
        }
        resumed.finished()
        lines.finish()
        let text = lineOutput.all
        XCTAssertTrue(text.contains("downloading 1 file, 4.00 MB\n"), text)
        XCTAssertTrue(text.contains("resuming r/w.bin at 1.00 MB of 4.00 MB\n"), text)
        XCTAssertTrue(text.contains("progress "), text)
        XCTAssertTrue(text.contains("done r/w.bin\n"), text)
        XCTAssertTrue(text.contains("fetched 1/1 files, 3.00 MB downloaded"), text)
        XCTAssertFalse(text.contains("\u{1B}"), "no terminal control codes in plain lines")
    }
}
