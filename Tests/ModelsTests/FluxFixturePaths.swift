import Foundation

enum FluxFixturePaths {
    static let folder: URL? = try? FixturePaths.folder("flux")
    static let extras = FixturePaths.resources("flux_extra")
}
