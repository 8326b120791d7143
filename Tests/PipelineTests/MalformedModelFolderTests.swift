import Foundation
import Fixtures
import ModelStore
import Models
import NN
import XCTest
@testable import Pipeline

/// Model folders the daemon must refuse loudly: a directory where a weights file belongs (it used to fall back to the
/// smoke pipeline without a word), and malformed configs (whose errors did not name the file).
final class MalformedModelFolderTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("model-folder-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testDirectoryWhereAWeightsFileBelongsFailsInsteadOfFallingBackToSmoke() throws {
        let root = repositoryRoot()
        let trellis = folder.appendingPathComponent("models/microsoft/TRELLIS-image-large")
        try FileManager.default.createDirectory(at: trellis.appendingPathComponent("ckpts/ss_flow_img_dit_L_16l8_fp16.safetensors"),
                                                withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: trellis.appendingPathComponent("pipeline.json"))
        let store = ModelStore(environment: ["HF_HOME": folder.appendingPathComponent("hf").path, "HF_HUB_OFFLINE": "1"],
                               modelsDirectories: [folder.appendingPathComponent("models").path])
        let options = AssemblyOptions(device: .cpu, modelsDirectories: [folder.appendingPathComponent("models").path],
                                      smokeDirectory: root.appendingPathComponent("assets/smoke"))
        XCTAssertThrowsError(try PipelineAssembly.build(options, store: store)) { error in
            guard case .directoryInPlaceOfFile(let model, let paths)? = error as? ModelStoreError else {
                return XCTFail("expected a directory-in-place-of-file error, got \(error)")
            }
            XCTAssertEqual(model, "trellis-image-large")
            XCTAssertEqual(paths, [trellis.appendingPathComponent("ckpts/ss_flow_img_dit_L_16l8_fp16.safetensors").path])
        }
    }

    /// A copy of a smoke model folder with its config replaced by `config`.
    func smokeCopy(_ name: String, config: String, file: String = "config.json") throws -> URL {
        let source = repositoryRoot().appendingPathComponent("assets/smoke/\(name)")
        let copy = folder.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: source, to: copy)
        try Data(config.utf8).write(to: copy.appendingPathComponent(file))
        return copy
    }

    func assertNamesFile(_ url: URL, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(url.path), "error does not name \(url.path): \(error)", file: file, line: line)
        }
    }

    func testMalformedConfigsNameTheFile() throws {
        let dino = try smokeCopy("dinov2", config: #"{"hidden_size": "wide"}"#)
        assertNamesFile(dino.appendingPathComponent("config.json")) { _ = try DINOv2.load(folder: dino) }
        let dino2 = try smokeCopy("dinov2", config: "{not json", file: "config.json")
        assertNamesFile(dino2.appendingPathComponent("config.json")) { _ = try DINOv2.load(folder: dino2) }

        let trellis = try smokeCopy("trellis", config: #"{"args": {"models": {}}}"#, file: "pipeline.json")
        assertNamesFile(trellis.appendingPathComponent("pipeline.json")) { _ = try TrellisPipelineConfig(url: trellis.appendingPathComponent("pipeline.json")) }

        let flowConfig = trellis.appendingPathComponent("ckpts/ss_flow.json")
        try Data(#"{"name": "SparseStructureFlowModel", "args": {"resolution": "sixteen"}}"#.utf8).write(to: flowConfig)
        let pipelineJSON = repositoryRoot().appendingPathComponent("assets/smoke/trellis/pipeline.json")
        try FileManager.default.removeItem(at: trellis.appendingPathComponent("pipeline.json"))
        try FileManager.default.copyItem(at: pipelineJSON, to: trellis.appendingPathComponent("pipeline.json"))
        assertNamesFile(flowConfig) {
            _ = try TrellisImageTo3D.load(folder: trellis, dinov2Folder: dino, device: .cpu, dtype: .float32)
        }
    }

    /// A case JSON with an io file beside it was skipped without a word when it did not parse.
    func testUnreadableFixtureCaseIsAnError() throws {
        let json = folder.appendingPathComponent("broken.json")
        try Data("{\"name\": ".utf8).write(to: json)
        try Data().write(to: folder.appendingPathComponent("broken_io.safetensors"))
        XCTAssertThrowsError(try FixtureRunner().discover(folder)) { error in
            XCTAssertTrue("\(error)".contains(json.path), "\(error)")
        }
    }
}
