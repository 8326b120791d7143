/// open_clip's `_clean_lower` (tokenizer.py, clean="lower", the SimpleTokenizer default):
/// `whitespace_clean(basic_clean(text)).lower()` with
/// `basic_clean = html.unescape(html.unescape(ftfy.fix_text(text))).strip()` and
/// `whitespace_clean = " ".join(text.split()).strip()`.
///
/// ftfy.fix_text is reproduced without its mojibake repair (see `Ftfy`).
enum OpenCLIPTextCleaner {
    static func clean(_ text: String) -> [Unicode.Scalar] {
        var scalars = Array(text.unicodeScalars)
        scalars = Ftfy.fixText(scalars)
        scalars = HTMLUnescape.python(HTMLUnescape.python(scalars))
        scalars = PythonText.collapseWhitespace(scalars)  // also covers the .strip() calls
        return PythonText.lower(scalars)
    }
}
