import Foundation

enum TrellisSparseFixturePaths {
    static func trellisFolder() -> URL? { try? FixturePaths.folder("trellis") }
}
