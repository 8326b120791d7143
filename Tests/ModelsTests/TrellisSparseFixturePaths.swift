import Foundation

/// Locates the shared TRELLIS fixtures: walks up from this file to a folder that holds `shared/fixtures`
/// (layout /work/main + /work/shared, or a CI clone with `shared/` beside it).
enum TrellisSparseFixturePaths {
    static func trellisFolder(file: String = #filePath) -> URL? {
        let fm = FileManager.default
        var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        while dir.path != "/" {
            for candidate in [dir.appendingPathComponent("shared/fixtures/trellis"),
                              dir.deletingLastPathComponent().appendingPathComponent("shared/fixtures/trellis")] {
                if fm.fileExists(atPath: candidate.appendingPathComponent("README.md").path) { return candidate }
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}
