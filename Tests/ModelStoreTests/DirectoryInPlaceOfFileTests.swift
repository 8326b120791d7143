import Foundation
import XCTest
@testable import ModelStore

/// A folder where a model file belongs (e.g. `model.safetensors/`) is a broken install: the store names it instead of
/// reporting the model as simply missing (which made the daemon fall back to the smoke pipeline without a word).
final class DirectoryInPlaceOfFileTests: XCTestCase {
    private func spec(_ files: [FileSpec]) -> ModelSpec {
        ModelSpec(name: "m", repo: "org/model", revision: "main", files: files, purpose: "test",
                  licence: LicenceInfo(name: "MIT", verified: true, source: "test"), gating: .open, approxDownloadBytes: 1,
                  components: [WeightComponent(name: "net", parameters: 1, gpuDType: .fp32)], inDefaultPipeline: true)
    }

    func testDirectoryWhereAFileBelongsIsNamed() throws {
        let fixture = try StoreFixture()
        let root = fixture.directory.path + "/models"
        let folder = root + "/org/model"
        try createDirectory(folder + "/model.safetensors")
        try createDirectory(folder + "/open_clip_model.safetensors")
        try createDirectory(folder + "/unet/diffusion_pytorch_model.safetensors")
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        let store = fixture.store(modelsDirectories: [root])

        let model = spec([.file("config.json"), .file("model.safetensors")])
        XCTAssertNil(store.locate(model: model))
        XCTAssertEqual(store.directoriesInPlaceOfFiles(model: model), [folder + "/model.safetensors"])
        XCTAssertThrowsError(try store.requireLocation(of: model)) { error in
            XCTAssertEqual(error as? ModelStoreError, .directoryInPlaceOfFile(model: "m", paths: [folder + "/model.safetensors"]))
            XCTAssertTrue("\(error)".contains("is a directory where a file belongs"), "\(error)")
        }
        XCTAssertEqual(store.directoriesInPlaceOfFiles(model: spec([.firstOf(["open_clip_model.safetensors", "x.bin"])])),
                       [folder + "/open_clip_model.safetensors"])
        XCTAssertEqual(store.directoriesInPlaceOfFiles(model: spec([.glob("*/*.safetensors")])),
                       [folder + "/unet/diffusion_pytorch_model.safetensors"])
    }

    func testMissingFilesAreNotReportedAsDirectories() throws {
        let fixture = try StoreFixture()
        let root = fixture.directory.path + "/models"
        try createDirectory(root + "/org/model")
        let store = fixture.store(modelsDirectories: [root])
        let model = spec([.file("config.json"), .file("model.safetensors")])
        XCTAssertEqual(store.directoriesInPlaceOfFiles(model: model), [])
        XCTAssertThrowsError(try store.requireLocation(of: model)) { error in
            guard case .modelMissing? = error as? ModelStoreError else { return XCTFail("\(error)") }
        }
    }
}
