import Foundation

/// Locates the shared oracle fixtures: walks up from this file to the folder holding `shared/fixtures`
/// (layout /work/main + /work/shared, or a CI clone with `shared/` beside it).
enum OpenCLIPFixturePaths {
    static func fixtures(file: String = #filePath) throws -> URL {
        var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        let fm = FileManager.default
        while dir.path != "/" {
            for candidate in [dir.appendingPathComponent("shared/fixtures"),
                              dir.deletingLastPathComponent().appendingPathComponent("shared/fixtures")] {
                if fm.fileExists(atPath: candidate.path) { return candidate }
            }
            dir = dir.deletingLastPathComponent()
        }
        throw NSError(domain: "OpenCLIPTests", code: 1,
                      userInfo: [NSLocalizedDescriptionKey: "shared/fixtures not found above \(file)"])
    }

    static func openclip() throws -> URL { try fixtures().appendingPathComponent("openclip") }

    /// The small torch.save checkpoints written by scripts/make_pth_fixture.py.
    static func torchCheckpoints(file: String = #filePath) -> URL {
        URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Resources/torch_checkpoints")
    }
}

extension OpenCLIPFixturePaths {
    /// A folder of this test target's Resources (written by the scripts named in each test).
    static func fixtureResources(_ name: String, file: String = #filePath) -> URL {
        URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Resources/\(name)")
    }
}
