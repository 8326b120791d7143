import Foundation

enum LGMFixturePaths {
    static let folder: URL? = try? FixturePaths.folder("lgm")
}
