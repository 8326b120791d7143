import Foundation
import XCTest

/// Locates the shared BiRefNet fixtures: walks up from this file to the first folder holding
/// `shared/fixtures/birefnet` (the layout is <root>/main + <root>/shared; CI clones main beside `shared/`).
enum BiRefNetFixturePaths {
    struct NotFound: Error, CustomStringConvertible {
        let start: String
        var description: String { "no shared/fixtures/birefnet above \(start)" }
    }

    static func folder(file: StaticString = #filePath) throws -> URL {
        let start = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        var dir = start
        while true {
            let candidate = dir.appendingPathComponent("shared/fixtures/birefnet")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("README.md").path) { return candidate }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { throw NotFound(start: start.path) }
            dir = parent
        }
    }

    static func url(_ name: String) throws -> URL { try folder().appendingPathComponent(name) }
}
