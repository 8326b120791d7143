import Foundation

enum BiRefNetFixturePaths {
    static func folder() throws -> URL { try FixturePaths.folder("birefnet") }
    static func url(_ name: String) throws -> URL { try folder().appendingPathComponent(name) }
}
