import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads 3DGS PLY files: binary little/big endian or ASCII, any property order, extra properties
/// and other elements skipped. Required vertex properties: x y z f_dc_0..2 opacity scale_0..2 rot_0..3
/// (float or double). Normals are read when nx, ny and nz are all present; the SH degree follows from
/// the number of `f_rest_*` properties (0, 9, 24, 45).
public enum PLYReader {
    /// Reads a PLY file; every error names the file.
    public static func read(contentsOf url: URL) throws -> GaussianSplat {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PLYError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        do { return try read(data) } catch let error as PLYError {
            throw PLYError.inFile(path: url.path, error)
        }
    }

    public static func read(_ data: Data) throws -> GaussianSplat {
        try data.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[...])
            let header = try PLYHeader.parse(bytes)
            guard let vertexIndex = header.elements.firstIndex(where: { $0.name == "vertex" }) else {
                throw PLYError.missingVertexElement
            }
            let vertex = header.elements[vertexIndex]
            let plan = try ColumnPlan(vertex: vertex)
            var body = BodyReader(bytes: bytes, position: header.bodyOffset, format: header.format)
            for element in header.elements[..<vertexIndex] {
                try body.skip(element)
            }
            let rows = try body.readColumns(of: vertex, plan: plan)
            return plan.splat(fromRows: rows, count: vertex.count)
        }
    }
}

/// Which vertex property fills which column of the Gaussian row layout.
struct ColumnPlan {
    let layout: GaussianLayout
    /// For each property of the vertex element, in file order: its column, or nil to skip it.
    let columnOfProperty: [Int?]

    init(vertex: PLYElement) throws {
        var indexOf: [String: Int] = [:]
        for (index, property) in vertex.properties.enumerated() { indexOf[property.name] = index }

        let missing = GaussianLayout.requiredNames.filter { indexOf[$0] == nil }
        guard missing.isEmpty else { throw PLYError.missingProperties(missing) }

        let hasNormals = ["nx", "ny", "nz"].allSatisfy { indexOf[$0] != nil }
        let restIndices = vertex.properties.compactMap { property -> Int? in
            guard property.name.hasPrefix("f_rest_") else { return nil }
            return Int(property.name.dropFirst("f_rest_".count))
        }.sorted()
        guard restIndices == Array(0..<restIndices.count) else {
            throw PLYError.invalidSHRest("indices \(restIndices.prefix(8))... are not 0..<\(restIndices.count)")
        }
        guard let degree = (0...3).first(where: { GaussianSplat.restCount(degree: $0) == restIndices.count }) else {
            throw PLYError.invalidSHRest("\(restIndices.count) coefficients match no SH degree 0...3 (expected 0, 9, 24 or 45)")
        }

        let layout = GaussianLayout(hasNormals: hasNormals, shDegree: degree)
        var columns = [Int?](repeating: nil, count: vertex.properties.count)
        for (column, name) in layout.propertyNames.enumerated() {
            let index = indexOf[name]!
            let property = vertex.properties[index]
            guard case let .scalar(type) = property.kind, type.isFloatingPoint else {
                let typeName: String
                switch property.kind {
                case let .scalar(type): typeName = type.rawValue
                case let .list(count, item): typeName = "list \(count.rawValue) \(item.rawValue)"
                }
                throw PLYError.unsupportedPropertyType(property: name, type: typeName)
            }
            columns[index] = column
        }
        self.layout = layout
        self.columnOfProperty = columns
    }

    /// Splits row-major Gaussian rows into the splat's per-field arrays.
    func splat(fromRows rows: [Float], count: Int) -> GaussianSplat {
        let width = layout.columnCount
        func gather(_ column: Int, _ fieldWidth: Int) -> [Float] {
            guard fieldWidth > 0 else { return [] }
            return [Float](unsafeUninitializedCapacity: count * fieldWidth) { out, initialized in
                rows.withUnsafeBufferPointer { src in
                    for i in 0..<count {
                        let from = i * width + column
                        let to = i * fieldWidth
                        for k in 0..<fieldWidth { out[to + k] = src[from + k] }
                    }
                }
                initialized = count * fieldWidth
            }
        }
        return GaussianSplat(
            positions: gather(layout.positionColumn, 3),
            normals: layout.hasNormals ? gather(layout.normalColumn, 3) : nil,
            shDC: gather(layout.dcColumn, 3),
            shRest: gather(layout.restColumn, layout.restCount),
            shDegree: layout.shDegree,
            opacities: gather(layout.opacityColumn, 1),
            scales: gather(layout.scaleColumn, 3),
            rotations: gather(layout.rotationColumn, 4))
    }
}

/// Walks the body of a PLY file element by element.
struct BodyReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let format: PLYFormat

    init(bytes: UnsafeRawBufferPointer, position: Int, format: PLYFormat) {
        self.bytes = bytes
        self.position = position
        self.format = format
    }

    private var available: Int { bytes.count - position }

    /// Rejects counts that the remaining bytes could not hold even at half the minimum row size:
    /// such a count is corrupt rather than a file cut short, and must not drive an allocation.
    /// Smaller shortfalls are reported as a truncated body when the rows run out.
    private func checkPlausible(_ element: PLYElement) throws {
        let perRow = format == .ascii ? 2 * element.properties.count : element.minimumRowSize
        let (minimum, overflow) = element.count.multipliedReportingOverflow(by: perRow)
        let (twiceAvailable, _) = available.multipliedReportingOverflow(by: 2)
        if overflow || minimum > twiceAvailable {
            throw PLYError.implausibleElementCount(element: element.name, count: element.count,
                                                   minimumBytes: overflow ? Int.max : minimum,
                                                   availableBytes: available)
        }
    }

    mutating func skip(_ element: PLYElement) throws {
        guard !element.properties.isEmpty else { return }  // rows without properties hold no bytes
        try checkPlausible(element)
        if format == .ascii {
            var tokens = ASCIITokens(bytes: bytes, position: position)
            for row in 0..<element.count {
                for property in element.properties {
                    switch property.kind {
                    case .scalar:
                        guard tokens.skipToken() else { throw truncated(element, rowsRead: row) }
                    case .list:
                        let n = try listLength(tokens.nextNumber(element: element, row: row), element: element, row: row)
                        for _ in 0..<n {
                            guard tokens.skipToken() else { throw truncated(element, rowsRead: row) }
                        }
                    }
                }
            }
            position = tokens.position
            return
        }
        if let rowSize = element.fixedRowSize {
            let needed = element.count * rowSize  // cannot overflow: checkPlausible bounded it
            guard needed <= available else {
                throw truncated(element, rowsRead: rowSize == 0 ? 0 : available / rowSize)
            }
            position += needed
            return
        }
        for row in 0..<element.count {
            for property in element.properties {
                switch property.kind {
                case let .scalar(type):
                    guard type.byteSize <= available else { throw truncated(element, rowsRead: row) }
                    position += type.byteSize
                case let .list(countType, itemType):
                    guard countType.byteSize <= available else { throw truncated(element, rowsRead: row) }
                    let n = try listLength(loadBinary(countType, at: position), element: element, row: row)
                    position += countType.byteSize
                    guard n <= available / itemType.byteSize else { throw truncated(element, rowsRead: row) }
                    position += n * itemType.byteSize
                }
            }
        }
    }

    /// Reads the vertex element into row-major Gaussian rows (`plan.layout.columnCount` floats per row).
    mutating func readColumns(of element: PLYElement, plan: ColumnPlan) throws -> [Float] {
        try checkPlausible(element)
        let width = plan.layout.columnCount
        let count = element.count
        var rows = [Float](repeating: 0, count: count * width)
        try rows.withUnsafeMutableBufferPointer { out in
            if format == .ascii {
                try readASCII(element, plan: plan, into: out)
            } else if let rowSize = element.fixedRowSize {
                try readFixedBinary(element, rowSize: rowSize, plan: plan, into: out)
            } else {
                try readVariableBinary(element, plan: plan, into: out)
            }
        }
        return rows
    }

    private mutating func readFixedBinary(_ element: PLYElement, rowSize: Int, plan: ColumnPlan,
                                          into out: UnsafeMutableBufferPointer<Float>) throws {
        let needed = element.count * rowSize
        guard needed <= available else {
            throw truncated(element, rowsRead: rowSize == 0 ? 0 : available / rowSize)
        }
        // (byte offset in row, type, destination column) for the properties we keep.
        var fields: [(offset: Int, type: PLYScalarType, column: Int)] = []
        var offset = 0
        for (property, column) in zip(element.properties, plan.columnOfProperty) {
            guard case let .scalar(type) = property.kind else { continue }
            if let column { fields.append((offset, type, column)) }
            offset += type.byteSize
        }
        let width = plan.layout.columnCount
        let allLittleFloat = format == .binaryLittleEndian && fields.allSatisfy { $0.type == .float32 }
        let base = bytes.baseAddress! + position
        if allLittleFloat {
            let offsets = fields.map(\.offset)
            let columns = fields.map(\.column)
            for row in 0..<element.count {
                let rowBase = base + row * rowSize
                let dst = out.baseAddress! + row * width
                for k in 0..<offsets.count {
                    let bits = rowBase.loadUnaligned(fromByteOffset: offsets[k], as: UInt32.self)
                    dst[columns[k]] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
        } else {
            for row in 0..<element.count {
                let rowStart = position + row * rowSize
                for field in fields {
                    out[row * width + field.column] = Float(loadBinary(field.type, at: rowStart + field.offset))
                }
            }
        }
        position += needed
    }

    private mutating func readVariableBinary(_ element: PLYElement, plan: ColumnPlan,
                                             into out: UnsafeMutableBufferPointer<Float>) throws {
        let width = plan.layout.columnCount
        for row in 0..<element.count {
            for (property, column) in zip(element.properties, plan.columnOfProperty) {
                switch property.kind {
                case let .scalar(type):
                    guard type.byteSize <= available else { throw truncated(element, rowsRead: row) }
                    if let column { out[row * width + column] = Float(loadBinary(type, at: position)) }
                    position += type.byteSize
                case let .list(countType, itemType):
                    guard countType.byteSize <= available else { throw truncated(element, rowsRead: row) }
                    let n = try listLength(loadBinary(countType, at: position), element: element, row: row)
                    position += countType.byteSize
                    guard n <= available / itemType.byteSize else { throw truncated(element, rowsRead: row) }
                    position += n * itemType.byteSize
                }
            }
        }
    }

    private mutating func readASCII(_ element: PLYElement, plan: ColumnPlan,
                                    into out: UnsafeMutableBufferPointer<Float>) throws {
        let width = plan.layout.columnCount
        var tokens = ASCIITokens(bytes: bytes, position: position)
        for row in 0..<element.count {
            for (property, column) in zip(element.properties, plan.columnOfProperty) {
                switch property.kind {
                case .scalar:
                    guard let value = try tokens.nextNumber(element: element, row: row) else {
                        throw truncated(element, rowsRead: row)
                    }
                    if let column { out[row * width + column] = Float(value) }
                case .list:
                    guard let length = try tokens.nextNumber(element: element, row: row) else {
                        throw truncated(element, rowsRead: row)
                    }
                    let n = try listLength(length, element: element, row: row)
                    for _ in 0..<n {
                        guard tokens.skipToken() else { throw truncated(element, rowsRead: row) }
                    }
                }
            }
        }
        position = tokens.position
    }

    private func truncated(_ element: PLYElement, rowsRead: Int) -> PLYError {
        .truncatedBody(element: element.name, rowsRead: rowsRead, rowsDeclared: element.count)
    }

    private func listLength(_ value: Double?, element: PLYElement, row: Int) throws -> Int {
        guard let value else { throw truncated(element, rowsRead: row) }
        guard value >= 0, value <= Double(Int32.max), value == value.rounded() else {
            throw PLYError.malformedBody(element: element.name, row: row, reason: "invalid list length \(value)")
        }
        return Int(value)
    }

    /// Loads one binary scalar at an absolute offset, byte-swapping for big-endian bodies.
    private func loadBinary(_ type: PLYScalarType, at offset: Int) -> Double {
        let big = format == .binaryBigEndian
        switch type {
        case .int8:
            return Double(bytes.loadUnaligned(fromByteOffset: offset, as: Int8.self))
        case .uint8:
            return Double(bytes[offset])
        case .int16:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: Int16.self)
            return Double(big ? Int16(bigEndian: raw) : Int16(littleEndian: raw))
        case .uint16:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
            return Double(big ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw))
        case .int32:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            return Double(big ? Int32(bigEndian: raw) : Int32(littleEndian: raw))
        case .uint32:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            return Double(big ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw))
        case .float32:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            return Double(Float(bitPattern: big ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw)))
        case .float64:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            return Double(bitPattern: big ? UInt64(bigEndian: raw) : UInt64(littleEndian: raw))
        }
    }
}

/// Whitespace-separated tokens of an ASCII PLY body, parsed without heap allocation.
struct ASCIITokens {
    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    private static let maximumTokenLength = 63

    init(bytes: UnsafeRawBufferPointer, position: Int) {
        self.bytes = bytes
        self.position = position
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0B || byte == 0x0C
    }

    /// Range of the next token, or nil at the end of the data.
    private mutating func nextRange() -> Range<Int>? {
        while position < bytes.count, Self.isSpace(bytes[position]) { position += 1 }
        guard position < bytes.count else { return nil }
        let start = position
        while position < bytes.count, !Self.isSpace(bytes[position]) { position += 1 }
        return start..<position
    }

    mutating func skipToken() -> Bool { nextRange() != nil }

    /// Next token as a number; nil at the end of the data; throws for a token that is not a number.
    mutating func nextNumber(element: PLYElement, row: Int) throws -> Double? {
        guard let range = nextRange() else { return nil }
        guard let value = Self.parse(bytes, range) else {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range.prefix(32)]), as: UTF8.self)
            throw PLYError.malformedBody(element: element.name, row: row, reason: "'\(text)' is not a number")
        }
        return value
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Double? {
        guard range.count <= maximumTokenLength else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: maximumTokenLength + 1) { buffer in
            for (i, byte) in bytes[range].enumerated() { buffer[i] = CChar(bitPattern: byte) }
            buffer[range.count] = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(buffer.baseAddress!, &end)
            guard let end, end - buffer.baseAddress! == range.count else { return nil }
            return value
        }
    }
}
