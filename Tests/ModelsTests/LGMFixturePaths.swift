import Foundation

/// Locates `shared/fixtures/lgm`: walks up from this file to the first folder holding `shared/fixtures`
/// (this package's own) or a sibling `shared` beside the package (the /work/main + /work/shared layout, and CI).
enum LGMFixturePaths {
    static let folder: URL? = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let fm = FileManager.default
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("shared/fixtures/lgm")
            if fm.fileExists(atPath: candidate.appendingPathComponent("README.md").path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()
}
