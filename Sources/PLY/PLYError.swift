/// Why a PLY file could not be read or a splat could not be written.
public enum PLYError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The data does not start with the `ply` magic line.
    case notPLY
    /// The data ends (or exceeds the header size limit) before `end_header`.
    case truncatedHeader
    /// A header line that does not follow the PLY grammar.
    case malformedHeader(line: Int, reason: String)
    /// A `format` other than ascii / binary_little_endian / binary_big_endian 1.0.
    case unsupportedFormat(String)
    /// A property type name PLY does not define, or a required property stored as a non-float type.
    case unsupportedPropertyType(property: String, type: String)
    /// The file has no `vertex` element.
    case missingVertexElement
    /// Required Gaussian properties absent from the vertex element (names in file order of requirement).
    case missingProperties([String])
    /// The `f_rest_*` properties do not form 0, 9, 24 or 45 consecutive coefficients.
    case invalidSHRest(String)
    /// The header declares far more rows than the bytes after it could hold (corrupt count).
    case implausibleElementCount(element: String, count: Int, minimumBytes: Int, availableBytes: Int)
    /// The body ends before all rows of an element were read.
    case truncatedBody(element: String, rowsRead: Int, rowsDeclared: Int)
    /// An ASCII body value that is not a number, or a list length that is not a valid count.
    case malformedBody(element: String, row: Int, reason: String)
    /// A splat whose arrays do not agree with its count, or an out-of-range SH degree.
    case invalidSplat(String)
    /// Writer options that cannot be honoured (SH degree outside 0...3).
    case invalidOptions(String)
    /// A file that could not be read at all.
    case unreadableFile(path: String, reason: String)
    /// Any of the above, about the PLY file at `path`.
    indirect case inFile(path: String, PLYError)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            return "cannot read PLY file \(path): \(reason)"
        case let .inFile(path, error):
            return "PLY file \(path): \(error)"
        case .notPLY:
            return "not a PLY file: the data does not start with the 'ply' magic line"
        case .truncatedHeader:
            return "truncated PLY header: no 'end_header' line found"
        case let .malformedHeader(line, reason):
            return "malformed PLY header at line \(line): \(reason)"
        case let .unsupportedFormat(format):
            return "unsupported PLY format '\(format)' (expected ascii, binary_little_endian or binary_big_endian 1.0)"
        case let .unsupportedPropertyType(property, type):
            return "unsupported type '\(type)' for PLY property '\(property)'"
        case .missingVertexElement:
            return "PLY file has no 'vertex' element"
        case let .missingProperties(names):
            return "PLY vertex element lacks required Gaussian properties: \(names.joined(separator: ", "))"
        case let .invalidSHRest(reason):
            return "invalid f_rest_* properties: \(reason)"
        case let .implausibleElementCount(element, count, minimumBytes, availableBytes):
            return "PLY header declares \(count) '\(element)' rows needing at least \(minimumBytes) bytes, "
                + "but only \(availableBytes) bytes follow: the count is corrupt or the file is badly truncated"
        case let .truncatedBody(element, rowsRead, rowsDeclared):
            return "truncated PLY body: element '\(element)' ends after \(rowsRead) of \(rowsDeclared) rows"
        case let .malformedBody(element, row, reason):
            return "malformed PLY body in element '\(element)' row \(row): \(reason)"
        case let .invalidSplat(reason):
            return "invalid Gaussian splat: \(reason)"
        case let .invalidOptions(reason):
            return "invalid PLY writer options: \(reason)"
        }
    }
}
