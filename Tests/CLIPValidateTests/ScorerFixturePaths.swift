import Foundation

/// Locates the shared oracle fixtures: walks up from this file to the folder holding `shared/fixtures`
/// (layout /work/main + /work/shared, or a CI clone with `shared/` beside it).
enum ScorerFixturePaths {
    static func openclip(file: String = #filePath) throws -> URL {
        var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        let fm = FileManager.default
        while dir.path != "/" {
            for candidate in [dir.appendingPathComponent("shared/fixtures"),
                              dir.deletingLastPathComponent().appendingPathComponent("shared/fixtures")] {
                if fm.fileExists(atPath: candidate.path) { return candidate.appendingPathComponent("openclip") }
            }
            dir = dir.deletingLastPathComponent()
        }
        throw NSError(domain: "ScorerTests", code: 1,
                      userInfo: [NSLocalizedDescriptionKey: "shared/fixtures not found above \(file)"])
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try openclip().appendingPathComponent(name))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NSError(domain: "ScorerTests", code: 2, userInfo: [NSLocalizedDescriptionKey: "\(name) is not an object"])
        }
        return object
    }
}
