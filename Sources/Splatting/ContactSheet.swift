/// Several same-sized RGB images laid out in a grid, left to right then top to bottom, as one 8-bit
/// RGB image (row-major, 3 bytes a pixel). Cells without an image and the gaps take `fill`.
public struct ContactSheet: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let rgb: [UInt8]

    public init(views: [RenderedView], columns: Int, gap: Int = 0, fill: SIMD3<UInt8> = SIMD3(0, 0, 0)) throws {
        guard let first = views.first else { throw RasterizerError("a contact sheet needs at least one view") }
        try self.init(images: views.map(\.rgb8), imageWidth: first.width, imageHeight: first.height,
                      columns: columns, gap: gap, fill: fill)
    }

    /// - Parameter images: each `imageWidth * imageHeight * 3` bytes of RGB.
    public init(images: [[UInt8]], imageWidth: Int, imageHeight: Int, columns: Int, gap: Int = 0,
                fill: SIMD3<UInt8> = SIMD3(0, 0, 0)) throws {
        guard !images.isEmpty else { throw RasterizerError("a contact sheet needs at least one image") }
        guard imageWidth > 0, imageHeight > 0 else {
            throw RasterizerError("contact sheet images must have a positive size, got \(imageWidth)x\(imageHeight)")
        }
        guard columns > 0 else { throw RasterizerError("a contact sheet needs at least one column, got \(columns)") }
        guard gap >= 0 else { throw RasterizerError("contact sheet gap must not be negative, got \(gap)") }
        let imageBytes = imageWidth * imageHeight * 3
        if let bad = images.firstIndex(where: { $0.count != imageBytes }) {
            throw RasterizerError("image \(bad) holds \(images[bad].count) bytes, expected \(imageBytes) "
                                  + "for \(imageWidth)x\(imageHeight) RGB")
        }
        let cols = min(columns, images.count)
        let rows = (images.count + cols - 1) / cols
        let width = cols * imageWidth + (cols - 1) * gap
        let height = rows * imageHeight + (rows - 1) * gap
        var sheet = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            sheet[3 * p] = fill.x
            sheet[3 * p + 1] = fill.y
            sheet[3 * p + 2] = fill.z
        }
        let rowBytes = imageWidth * 3
        for (index, image) in images.enumerated() {
            let left = (index % cols) * (imageWidth + gap)
            let top = (index / cols) * (imageHeight + gap)
            for y in 0..<imageHeight {
                let dst = ((top + y) * width + left) * 3
                sheet.replaceSubrange(dst..<(dst + rowBytes), with: image[(y * rowBytes)..<((y + 1) * rowBytes)])
            }
        }
        self.width = width
        self.height = height
        self.rgb = sheet
    }
}
