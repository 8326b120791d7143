import Foundation

enum OpenCLIPFixturePaths {
    static func fixtures() throws -> URL { try FixturePaths.folder("") }
    static func openclip() throws -> URL { try FixturePaths.folder("openclip") }
    static func torchCheckpoints() -> URL { FixturePaths.resources("torch_checkpoints") }
    static func fixtureResources(_ name: String) -> URL { FixturePaths.resources(name) }
}
