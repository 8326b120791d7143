import Pipeline
import Foundation
import Imaging

/// An RGB pixel buffer with the few primitives a bar chart needs: filled rectangles and bitmap text.
public struct ChartCanvas {
    public let width: Int
    public let height: Int
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, background: RGBColor = .white) throws {
        guard width > 0, height > 0, width <= 8192, height <= 8192 else {
            throw BenchError.invalidArgument("chart size \(width)x\(height) outside 1...8192")
        }
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fill(x: 0, y: 0, width: width, height: height, color: background)
    }

    /// Fills the rectangle, clipped to the canvas.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, color: RGBColor) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        pixels.withUnsafeMutableBufferPointer { p in
            for row in y0..<y1 {
                var i = (row * width + x0) * 3
                for _ in x0..<x1 {
                    p[i] = color.red
                    p[i + 1] = color.green
                    p[i + 2] = color.blue
                    i += 3
                }
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y), each font pixel a `scale` x `scale` square.
    public mutating func text(_ text: String, x: Int, y: Int, scale: Int = 1, color: RGBColor) {
        var left = x
        for character in text {
            let rows = BitmapFont.glyph(character)
            for (r, bits) in rows.enumerated() where bits != 0 {
                for c in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - c)) != 0 {
                    fill(x: left + c * scale, y: y + r * scale, width: scale, height: scale, color: color)
                }
            }
            left += BitmapFont.advance * scale
        }
    }

    public func color(x: Int, y: Int) -> RGBColor {
        let i = (y * width + x) * 3
        return RGBColor(red: pixels[i], green: pixels[i + 1], blue: pixels[i + 2])
    }

    public func image() throws -> Image {
        try Image(width: width, height: height, channels: 3, pixels: pixels)
    }
}
