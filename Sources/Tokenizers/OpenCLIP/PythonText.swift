import Foundation

/// Python 3 `str` operations with Python's exact semantics, on arrays of scalars (Python strings are sequences of
/// code points, so indices and lengths here count scalars too).
enum PythonText {
    /// `ch.isspace()`.
    @inline(__always)
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) || (v >= 0x1C && v <= 0x1F) }
        return PythonTextTables.pythonWhitespace.contains(v)
    }

    /// `" ".join(text.split())`: runs of whitespace become one space, none at either end.
    static func collapseWhitespace(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var pendingSpace = false
        for scalar in text {
            if isSpace(scalar) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(scalar)
            }
        }
        return out
    }

    /// `text.strip()`.
    static func strip(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard let first = text.firstIndex(where: { !isSpace($0) }) else { return [] }
        let last = text.lastIndex(where: { !isSpace($0) })!
        return Array(text[first...last])
    }

    /// `text.lower()`: full lower-case mappings (U+0130 -> "i\u{307}") and the Final_Sigma rule for U+03A3.
    static func lower(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for (index, scalar) in text.enumerated() {
            let v = scalar.value
            if v < 0x80 {
                out.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(v + 32)! : scalar)
            } else if v == 0x3A3 {
                out.append(isFinalSigma(text, at: index) ? "\u{3C2}" : "\u{3C3}")
            } else if scalar.properties.changesWhenLowercased {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return out
    }

    /// CPython's handle_capital_sigma: \p{cased} \p{case-ignorable}* U+03A3 !(\p{case-ignorable}* \p{cased}).
    private static func isFinalSigma(_ text: [Unicode.Scalar], at index: Int) -> Bool {
        var j = index - 1
        while j >= 0 && text[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0 && text[j].properties.isCased else { return false }
        j = index + 1
        while j < text.count && text[j].properties.isCaseIgnorable { j += 1 }
        return j == text.count || !text[j].properties.isCased
    }

    /// `unicodedata.normalize("NFC", text)`.
    static func nfc(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        // Text of scalars below U+0300 has no combining marks and no composition candidates: already NFC.
        if !text.contains(where: { $0.value >= 0x300 }) { return text }
        return Array(String(scalars: text).precomposedStringWithCanonicalMapping.unicodeScalars)
    }
}

extension String {
    init(scalars: some Sequence<Unicode.Scalar>) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        self = String(view)
    }
}
