import Foundation
import XCTest
@testable import PLY

/// Finds `shared/fixtures` by walking up from this file (layout: <root>/main or <root>/wt/<name>, <root>/shared).
enum Fixtures {
    static func url(_ relativePath: String, file: StaticString = #filePath) throws -> URL {
        var directory = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("shared/fixtures")
            if FileManager.default.fileExists(atPath: candidate.path) {
                return candidate.appendingPathComponent(relativePath)
            }
            directory.deleteLastPathComponent()
        }
        throw FixtureNotFound(searchedFrom: "\(file)")
    }
}

struct FixtureNotFound: Error, CustomStringConvertible {
    let searchedFrom: String
    var description: String { "no shared/fixtures directory above \(searchedFrom)" }
}

/// Assembles PLY files by hand so the reader is tested against bytes the writer did not produce.
struct PLYBytes {
    var data = Data()

    init(header lines: [String]) {
        data.append(contentsOf: Array((lines.joined(separator: "\n") + "\n").utf8))
    }

    mutating func float(_ value: Float, bigEndian: Bool = false) {
        let bits = bigEndian ? value.bitPattern.bigEndian : value.bitPattern.littleEndian
        withUnsafeBytes(of: bits) { data.append(contentsOf: $0) }
    }

    mutating func double(_ value: Double) {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func int32(_ value: Int32) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func uint8(_ value: UInt8) { data.append(value) }

    mutating func text(_ string: String) { data.append(contentsOf: Array(string.utf8)) }
}

/// Little-endian float at a byte offset, assembled byte by byte (independent of the reader's loads).
func rawFloat(_ bytes: [UInt8], at offset: Int) -> Float {
    let bits = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
        | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    return Float(bitPattern: bits)
}

func headerLines(_ data: Data) -> [String] {
    let end = data.range(of: Data("end_header\n".utf8))!.upperBound
    return String(decoding: data[..<end], as: UTF8.self).split(separator: "\n").map(String.init)
}

func assertThrows(_ expected: PLYError, file: StaticString = #filePath, line: UInt = #line,
                  _ body: () throws -> Void) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        XCTAssertEqual(error as? PLYError, expected, "got \(error)", file: file, line: line)
        XCTAssertFalse("\(error)".isEmpty, file: file, line: line)
    }
}

/// The 14 required property lines in canonical order.
let canonicalProperties = GaussianLayout(hasNormals: false, shDegree: 0).propertyNames.map { "property float \($0)" }
