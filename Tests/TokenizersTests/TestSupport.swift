import Foundation
import XCTest
@testable import Tokenizers

/// Locates the shared oracle fixtures: the `shared/fixtures` folder found walking up from this file (the layout
/// is <root>/main or <root>/wt/<name> with <root>/shared beside it).
enum SharedFixtures {
    static func folder(_ name: String, file: StaticString = #filePath) throws -> URL {
        var directory = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        while directory.path != "/" {
            for candidate in [directory.appendingPathComponent("shared/fixtures"),
                              directory.deletingLastPathComponent().appendingPathComponent("shared/fixtures")] {
                let url = candidate.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: url.path) { return url }
            }
            directory.deleteLastPathComponent()
        }
        throw TokenizerError.unreadableFile(path: "shared/fixtures/\(name)", reason: "not found above \(file)")
    }
}

/// A minimal safetensors reader for the test fixtures: the JSON header and integer tensors.
struct SafetensorsFile {
    struct Tensor {
        var dtype: String
        var shape: [Int]
        var values: [Int64]
    }

    let tensors: [String: Tensor]

    init(url: URL) throws {
        let data = [UInt8](try Data(contentsOf: url))
        guard data.count >= 8 else { throw TokenizerError.malformed(what: url.path, reason: "shorter than 8 bytes") }
        let headerLength = Int(data[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        guard headerLength <= data.count - 8,
              let header = try JSONSerialization.jsonObject(with: Data(data[8..<(8 + headerLength)])) as? [String: Any] else {
            throw TokenizerError.malformed(what: url.path, reason: "bad safetensors header")
        }
        let body = data[(8 + headerLength)...]
        var tensors: [String: Tensor] = [:]
        for (name, entry) in header where name != "__metadata__" {
            guard let entry = entry as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { throw TokenizerError.malformed(what: url.path, reason: "bad entry \(name)") }
            let width: Int
            switch dtype {
            case "I64": width = 8
            case "I32": width = 4
            default: continue  // only integer tensors are needed here
            }
            let start = body.startIndex + offsets[0]
            let end = body.startIndex + offsets[1]
            guard end <= body.endIndex, (end - start) == shape.reduce(1, *) * width else {
                throw TokenizerError.malformed(what: url.path, reason: "\(name): data size does not match shape")
            }
            var values: [Int64] = []
            values.reserveCapacity((end - start) / width)
            var position = start
            while position < end {
                var raw: UInt64 = 0
                for k in 0..<width { raw |= UInt64(data[position + k]) << (8 * UInt64(k)) }
                values.append(width == 8 ? Int64(bitPattern: raw) : Int64(Int32(truncatingIfNeeded: raw)))
                position += width
            }
            tensors[name] = Tensor(dtype: dtype, shape: shape, values: values)
        }
        self.tensors = tensors
    }
}

/// The oracle written by scripts/make_tokenizer_oracle.py (Resources/tokenizer_oracle.json.gz).
struct TokenizerOracle {
    let root: [String: Any]
    let texts: [String]

    static let shared: Result<TokenizerOracle, Error> = Result {
        let url = try resource("tokenizer_oracle.json.gz")
        let json = try Gzip.decompress([UInt8](try Data(contentsOf: url)))
        guard let root = try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
              let texts = root["texts"] as? [String] else {
            throw TokenizerError.malformed(what: "tokenizer_oracle.json", reason: "no texts")
        }
        return TokenizerOracle(root: root, texts: texts)
    }

    static func load() throws -> TokenizerOracle { try shared.get() }

    /// The value at a path of object keys.
    func value(_ path: String...) throws -> Any {
        var node: Any = root
        for key in path {
            guard let object = node as? [String: Any], let next = object[key] else {
                throw TokenizerError.malformed(what: "tokenizer_oracle.json", reason: "no \(path.joined(separator: "."))")
            }
            node = next
        }
        return node
    }

    /// A list of id lists, one per text.
    func idLists(_ path: String...) throws -> [[Int]] {
        var node: Any = root
        for key in path { node = (node as? [String: Any])?[key] as Any }
        guard let lists = node as? [[Int]], lists.count == texts.count else {
            throw TokenizerError.malformed(what: "tokenizer_oracle.json", reason: "\(path.joined(separator: ".")) is not \(texts.count) id lists")
        }
        return lists
    }

    /// Padded encodings stored as {"ids": unpadded head, "pad": count}, expanded with `padID`.
    func paddedLists(_ path: String..., padID: Int) throws -> [[Int]] {
        var node: Any = root
        for key in path { node = (node as? [String: Any])?[key] as Any }
        guard let entries = node as? [[String: Any]], entries.count == texts.count else {
            throw TokenizerError.malformed(what: "tokenizer_oracle.json", reason: "\(path.joined(separator: ".")) missing")
        }
        return try entries.map { entry in
            guard let ids = entry["ids"] as? [Int], let pad = entry["pad"] as? Int else {
                throw TokenizerError.malformed(what: "tokenizer_oracle.json", reason: "padded entry")
            }
            return ids + Array(repeating: padID, count: pad)
        }
    }

    /// A file of Tests/TokenizersTests/Resources (copied whole into the test target's resource bundle).
    static func resource(_ relativePath: String) throws -> URL {
        let url = Bundle.module.bundleURL.appendingPathComponent("Resources").appendingPathComponent(relativePath)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TokenizerError.unreadableFile(path: url.path, reason: "missing")
        }
        return url
    }
}

/// Collects per-case mismatches so one failing assertion lists them all.
struct MismatchReport {
    private(set) var lines: [String] = []
    private(set) var checked = 0

    mutating func check<T: Equatable>(_ actual: T, _ expected: T, _ label: @autoclosure () -> String) {
        checked += 1
        if actual != expected { lines.append("\(label()):\n    got      \(actual)\n    expected \(expected)") }
    }

    func assertEmpty(_ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertGreaterThan(checked, 0, "\(what): nothing was compared", file: file, line: line)
        XCTAssertTrue(lines.isEmpty, "\(what): \(lines.count) of \(checked) differ\n" + lines.prefix(12).joined(separator: "\n"),
                      file: file, line: line)
    }
}
