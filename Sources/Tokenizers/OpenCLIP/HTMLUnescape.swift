/// HTML entity decoding as Python's `html.unescape` and ftfy's `fixes.unescape_html` do it.
enum HTMLUnescape {
    /// `html.entities.html5`, keyed by name without the '&' (names with and without the trailing ';').
    static let html5: [String: [Unicode.Scalar]] = unpack(PythonTextTables.html5Entities)
    /// ftfy's extra upper-case names such as "EACUTE;" (ftfy.chardata.HTML_ENTITIES minus html5).
    static let ftfyUppercase: [String: [Unicode.Scalar]] = unpack(PythonTextTables.ftfyUppercaseEntities)

    private static func unpack(_ packed: String) -> [String: [Unicode.Scalar]] {
        var table: [String: [Unicode.Scalar]] = [:]
        var name = String.UnicodeScalarView()
        var value: [Unicode.Scalar] = []
        var inValue = false
        for scalar in packed.unicodeScalars {
            switch scalar {
            case "\u{1F}":
                inValue = true
            case "\u{1E}":
                table[String(name)] = value
                name = String.UnicodeScalarView()
                value = []
                inValue = false
            default:
                if inValue { value.append(scalar) } else { name.append(scalar) }
            }
        }
        return table
    }

    /// Python's `html.unescape(s)`: the regex
    /// `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` replaced by `_replace_charref`.
    static func python(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == "&", let (replacement, end) = pythonCharref(text, at: i + 1) {
                out.append(contentsOf: replacement)
                i = end
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    /// Matches the charref body starting at `start` (just after '&'); returns the replacement and the end index.
    private static func pythonCharref(_ text: [Unicode.Scalar], at start: Int) -> ([Unicode.Scalar], Int)? {
        guard start < text.count else { return nil }
        if text[start] == "#" {
            var i = start + 1
            var isHex = false
            if i < text.count && (text[i] == "x" || text[i] == "X") {
                isHex = true
                i += 1
            }
            let digitsStart = i
            while i < text.count && (isHex ? isASCIIHexDigit(text[i]) : isASCIIDigit(text[i])) { i += 1 }
            guard i > digitsStart else { return nil }  // the named branch cannot match '#' either
            let value = parseNumber(text[digitsStart..<i], radix: isHex ? 16 : 10)
            if i < text.count && text[i] == ";" { i += 1 }
            return (numericCharref(value), i)
        }
        var i = start
        while i < text.count && i - start < 32 && !isNamedCharrefStop(text[i]) { i += 1 }
        guard i > start else { return nil }
        if i < text.count && text[i] == ";" { i += 1 }
        let name = text[start..<i]
        if let value = html5[String(scalars: name)] { return (value, i) }
        // The longest prefix that is an entity (html5 has names such as "amp" and "not" without ';').
        var length = name.count - 1
        while length > 1 {
            if let value = html5[String(scalars: name.prefix(length))] {
                return (value + name.dropFirst(length), i)
            }
            length -= 1
        }
        return (["&"] + name, i)
    }

    /// `_replace_charref` for a numeric reference (nil = larger than any code point).
    private static func numericCharref(_ value: UInt32?) -> [Unicode.Scalar] {
        guard let value, value <= 0x10FFFF else { return ["\u{FFFD}"] }
        if let fixed = PythonTextTables.invalidCharrefs[value] { return Array(fixed.unicodeScalars) }
        if (0xD800...0xDFFF).contains(value) { return ["\u{FFFD}"] }
        if PythonTextTables.invalidCodepoints.contains(value) { return [] }
        return [Unicode.Scalar(value)!]
    }

    /// ftfy's `unescape_html`: `&#?[0-9A-Za-z]{1,24};` replaced by `_unescape_fixup`.
    static func ftfy(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            guard text[i] == "&", let end = ftfyEntityEnd(text, at: i) else {
                out.append(text[i])
                i += 1
                continue
            }
            let entity = Array(text[i..<end])
            out.append(contentsOf: ftfyFixup(entity))
            i = end
        }
        return out
    }

    /// End index (after ';') of an ftfy entity match starting at the '&' at `start`.
    private static func ftfyEntityEnd(_ text: [Unicode.Scalar], at start: Int) -> Int? {
        // The alphanumeric run after the optional '#' must be 1...24 long and followed by ';' (';' is not
        // alphanumeric, so backtracking to a shorter run never finds a ';' instead).
        let runStart = start + 1 < text.count && text[start + 1] == "#" ? start + 2 : start + 1
        var i = runStart
        while i < text.count && isASCIIAlphanumeric(text[i]) { i += 1 }
        let length = i - runStart
        return length >= 1 && length <= 24 && i < text.count && text[i] == ";" ? i + 1 : nil
    }

    private static func ftfyFixup(_ entity: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let name = String(scalars: entity.dropFirst())
        if let value = html5[name] ?? ftfyUppercase[name] { return value }  // only ';'-terminated names get here
        if entity.count > 1 && entity[1] == "#" {
            let decoded = python(entity)
            // html.unescape decoding only part of it (the ';' survives) means no replacement.
            return decoded.contains(";") ? entity : decoded
        }
        return entity
    }

    private static func parseNumber(_ digits: ArraySlice<Unicode.Scalar>, radix: UInt32) -> UInt32? {
        var value: UInt32 = 0
        for digit in digits {
            let d = digit.value <= 0x39 ? digit.value - 0x30 : (digit.value | 0x20) - 0x61 + 10
            let (multiplied, overflow1) = value.multipliedReportingOverflow(by: radix)
            let (added, overflow2) = multiplied.addingReportingOverflow(d)
            if overflow1 || overflow2 { return nil }
            value = added
        }
        return value
    }

    private static func isASCIIDigit(_ s: Unicode.Scalar) -> Bool { s.value >= 0x30 && s.value <= 0x39 }
    private static func isASCIIHexDigit(_ s: Unicode.Scalar) -> Bool {
        isASCIIDigit(s) || (s.value | 0x20 >= 0x61 && s.value | 0x20 <= 0x66)
    }
    private static func isASCIIAlphanumeric(_ s: Unicode.Scalar) -> Bool {
        isASCIIDigit(s) || (s.value | 0x20 >= 0x61 && s.value | 0x20 <= 0x7A)
    }
    /// The characters `[^\t\n\f <&#;]` excludes.
    private static func isNamedCharrefStop(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "\t", "\n", "\u{0C}", " ", "<", "&", "#", ";": return true
        default: return false
        }
    }
}
