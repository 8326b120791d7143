/// `ftfy.fix_text` (ftfy 6.3.1, default configuration) without its mojibake repair.
///
/// Reproduced exactly: the per-line segmentation, html unescaping ("auto": off from the first line holding a '<'),
/// fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
/// remove_terminal_escapes, remove_control_chars and NFC, repeated until the text stops changing.
/// Left out: `fix_encoding` (the heuristic that detects text decoded with the wrong codec, "cafÃ©" -> "café", and
/// re-decodes it) — such text passes through unrepaired. `fix_surrogates` has nothing to do on Swift strings.
enum Ftfy {
    /// ftfy's `max_decode_length`: segments are cut at this many code points when a line is longer.
    private static let maxSegmentLength = 1_000_000

    static func fixText(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var unescapeHTML = true
        var position = 0
        while position < text.count {
            var end = (text[position...].firstIndex(of: "\n").map { $0 + 1 }) ?? text.count
            if end - position > maxSegmentLength { end = position + maxSegmentLength }
            let segment = Array(text[position..<end])
            if unescapeHTML && segment.contains("<") { unescapeHTML = false }
            out.append(contentsOf: fixSegment(segment, unescapeHTML: unescapeHTML))
            position = end
        }
        return out
    }

    /// `fix_and_explain` on one segment: every step in order, until a full pass changes nothing.
    private static func fixSegment(_ segment: [Unicode.Scalar], unescapeHTML: Bool) -> [Unicode.Scalar] {
        var text = segment
        while true {
            let before = text
            if unescapeHTML { text = HTMLUnescape.ftfy(text) }
            text = fixC1Controls(text)
            text = translate(text, PythonTextTables.ligatures)
            text = translate(text, PythonTextTables.widthMap)
            text = uncurlQuotes(text)
            text = fixLineBreaks(text)
            text = removeTerminalEscapes(text)
            text = removeControlCharacters(text)
            text = PythonText.nfc(text)
            if text == before { return text }
        }
    }

    /// C1 controls U+0080...U+009F read as the Windows-1252 bytes they most likely were.
    static func fixC1Controls(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { (0x80...0x9F).contains($0.value) }) else { return text }
        return text.map {
            (0x80...0x9F).contains($0.value) ? Unicode.Scalar(PythonTextTables.c1AsWindows1252[Int($0.value - 0x80)])! : $0
        }
    }

    /// `str.translate` with a code point -> replacement table.
    static func translate(_ text: [Unicode.Scalar], _ table: [UInt32: String]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0.value >= 0x80 && table[$0.value] != nil }) else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for scalar in text {
            if scalar.value >= 0x80, let replacement = table[scalar.value] {
                out.append(contentsOf: replacement.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return out
    }

    /// U+02BC and U+2018...U+201B become "'", U+201C...U+201F become '"'.
    static func uncurlQuotes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.map { scalar in
            switch scalar.value {
            case 0x2BC, 0x2018...0x201B: return "'"
            case 0x201C...0x201F: return "\""
            default: return scalar
            }
        }
    }

    /// "\r\n", "\r", U+2028, U+2029 and U+0085 become "\n".
    static func fixLineBreaks(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            switch text[i].value {
            case 0x0D:
                out.append("\n")
                if i + 1 < text.count && text[i + 1] == "\n" { i += 1 }
            case 0x2028, 0x2029, 0x85:
                out.append("\n")
            default:
                out.append(text[i])
            }
            i += 1
        }
        return out
    }

    /// Removes ANSI escapes, the regex `\033\[((?:\d|;)*)([a-zA-Z])` (`\d`: any decimal digit, Unicode Nd).
    static func removeTerminalEscapes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("\u{1B}") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == "\u{1B}" && i + 1 < text.count && text[i + 1] == "[" {
                var j = i + 2
                while j < text.count && (text[j] == ";" || text[j].properties.numericType == .decimal) { j += 1 }
                if j < text.count && text[j].isASCII && text[j].properties.isAlphabetic {
                    i = j + 1
                    continue
                }
            }
            out.append(text[i])
            i += 1
        }
        return out
    }

    /// Drops U+0000...U+0008, U+000B, U+000E...U+001F, U+007F, U+206A...U+206F, U+FEFF, U+FFF9...U+FFFC.
    static func removeControlCharacters(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.filter { scalar in
            switch scalar.value {
            case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return false
            default: return true
            }
        }
    }
}
