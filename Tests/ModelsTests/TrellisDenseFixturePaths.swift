import Foundation

enum TrellisDenseFixturePaths {
    static func fixtures() throws -> URL { try FixturePaths.folder("") }
    static func trellis() throws -> URL { try FixturePaths.folder("trellis") }
    static func resources() -> URL { FixturePaths.resources("TrellisDense") }
}
