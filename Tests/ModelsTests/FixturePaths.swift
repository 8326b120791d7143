import Foundation

/// Where the shared oracle fixtures and this target's own resources are. `shared/fixtures` is found by walking up
/// from this file (the layout here is <root>/main + <root>/shared; CI clones main with shared/ beside it).
enum FixturePaths {
    struct NotFound: Error, CustomStringConvertible {
        let what: String
        var description: String { "\(what) not found above \(#filePath)" }
    }

    static let shared: URL? = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("shared/fixtures")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("FORMAT.md").path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }()

    /// `shared/fixtures/<name>`, or an error naming what is missing.
    static func folder(_ name: String) throws -> URL {
        guard let shared else { throw NotFound(what: "shared/fixtures") }
        let url = shared.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw NotFound(what: "shared/fixtures/\(name)") }
        return url
    }

    /// `Tests/ModelsTests/Resources/<name>`.
    static func resources(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/\(name)")
    }
}

/// Thrown (a test failure, never a skip) when the shared fixtures a parity test needs are not there.
struct MissingFixture: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
