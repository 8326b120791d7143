import Foundation

/// Strict check of a `multipart/form-data` part's `Content-Disposition` (RFC 7578 section 4.2):
/// `form-data` followed by `; name=value` parameters whose values are tokens or terminated quoted
/// strings, with exactly one non-empty `name`. The lenient `HeaderParameters` reading would turn
/// `name=seed"` or `name prompt` into a part without a usable name, and a dropped `seed` part
/// silently becomes a random seed.
package enum FormDataDisposition {
    /// Why the disposition does not name the part, nil when it does.
    package static func problem(_ disposition: String?) -> String? {
        guard let disposition else { return "has no Content-Disposition header" }
        let bytes = Array(disposition.utf8)
        var index = 0
        func skipSpace() {
            while index < bytes.count, bytes[index] == HTTPSyntax.space || bytes[index] == HTTPSyntax.tab { index += 1 }
        }
        func token() -> [UInt8] {
            let start = index
            while index < bytes.count, HTTPSyntax.isTokenChar(bytes[index]) { index += 1 }
            return Array(bytes[start..<index])
        }
        skipSpace()
        guard String(decoding: token(), as: UTF8.self).lowercased() == "form-data" else {
            return "Content-Disposition is not 'form-data'"
        }
        var names = 0
        var nameIsEmpty = false
        while true {
            skipSpace()
            if index == bytes.count { break }
            guard bytes[index] == UInt8(ascii: ";") else { return "malformed Content-Disposition parameters" }
            index += 1
            skipSpace()
            let key = String(decoding: token(), as: UTF8.self).lowercased()
            guard !key.isEmpty, index < bytes.count, bytes[index] == UInt8(ascii: "=") else {
                return "malformed Content-Disposition parameters"
            }
            index += 1
            var valueLength = 0
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                var closed = false
                while index < bytes.count {
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\"") {
                        closed = true
                        break
                    }
                    if byte == UInt8(ascii: "\\") { index += 1 }
                    valueLength += 1
                }
                guard closed, index <= bytes.count else { return "unterminated quoted string in Content-Disposition" }
            } else {
                valueLength = token().count
                guard valueLength > 0 else { return "malformed Content-Disposition parameters" }
            }
            if key == "name" {
                names += 1
                nameIsEmpty = valueLength == 0
            }
        }
        if names == 0 { return "has no 'name' in its Content-Disposition" }
        if names > 1 { return "has more than one 'name' in its Content-Disposition" }
        if nameIsEmpty { return "has an empty 'name'" }
        return nil
    }
}
