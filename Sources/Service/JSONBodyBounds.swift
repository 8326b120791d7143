import Foundation
import HTTPServer

/// Bounds the nesting and the element count of a JSON text before Foundation parses it.
/// Foundation's parser traps (SIGILL) on some deeply nested inputs instead of throwing, and a trap
/// reached from a request body kills the server, so bodies deeper than `maxDepth` never reach it.
/// Foundation also builds a node per value before decoding, so a body of millions of tiny values
/// would cost gigabytes; a generation request has a few dozen, so `maxElements` is generous.
enum JSONBodyBounds {
    /// A generation request nests at most 2 levels (`{"options": {...}}`); 32 leaves room for
    /// clients that wrap requests, and stays far below the depths where Foundation fails.
    static let maxDepth = 32
    static let maxElements = 4096

    /// Throws 400 when arrays/objects nest deeper than `maxDepth` or the text has more than
    /// `maxElements` containers and separators. Brackets and commas inside strings (with escapes)
    /// do not count; everything else is left to the real parser.
    static func check(_ body: Data, maxDepth: Int = maxDepth, maxElements: Int = maxElements) throws {
        let problem = body.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> String? in
            var depth = 0
            var elements = 0
            var inString = false
            var escaped = false
            for byte in raw {
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""):
                    inString = true
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    elements += 1
                    if depth > maxDepth { return "JSON body nests deeper than \(maxDepth) levels" }
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    depth = max(0, depth - 1)
                case UInt8(ascii: ","):
                    elements += 1
                default:
                    break
                }
                if elements > maxElements { return "JSON body has more than \(maxElements) values" }
            }
            return nil
        }
        if let problem { throw HTTPError(.badRequest, problem) }
    }
}
