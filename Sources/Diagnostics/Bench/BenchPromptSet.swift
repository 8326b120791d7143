import Pipeline
import Foundation
import Imaging

/// An image prompt of the benchmark: its file name (for the report) and its pixels.
public struct BenchImage {
    public var name: String
    public var image: Image

    public init(name: String, image: Image) {
        self.name = name
        self.image = image
    }
}

/// The prompts a benchmark runs: text prompts for the text-to-3D configurations, images for the image-to-3D ones.
///
/// File format (assets/bench/prompts.txt, or `--prompts FILE`): one text prompt a line; blank lines and lines
/// starting with `#` are skipped; `image: PATH` adds an image prompt (PATH relative to the file's folder).
public struct BenchPromptSet {
    public var texts: [String]
    public var images: [BenchImage]

    public init(texts: [String], images: [BenchImage]) {
        self.texts = texts
        self.images = images
    }

    public static let defaultFileName = "prompts.txt"
    public static let defaultImagesFolder = "images"
    /// Image prompts larger than this are refused (the bench set is meant to be small).
    public static let maxImagePixels = 4096 * 4096

    /// Reads a prompt file and the images its `image:` lines name.
    public static func load(file: URL) throws -> BenchPromptSet {
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw BenchError.promptFile(path: file.path, message: "cannot read it as UTF-8 text (\(error.localizedDescription))")
        }
        let folder = file.deletingLastPathComponent()
        var texts: [String] = []
        var images: [BenchImage] = []
        for (index, raw) in text.components(separatedBy: .newlines).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.lowercased().hasPrefix("image:") {
                let path = line.dropFirst("image:".count).trimmingCharacters(in: .whitespaces)
                guard !path.isEmpty else {
                    throw BenchError.promptFile(path: file.path, message: "line \(index + 1): 'image:' names no file")
                }
                let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path)
                images.append(try loadImage(url))
            } else {
                guard line.utf8.count <= 8 * 1024 else {
                    throw BenchError.promptFile(path: file.path, message: "line \(index + 1) is longer than 8 KiB")
                }
                texts.append(line)
            }
        }
        guard !texts.isEmpty || !images.isEmpty else {
            throw BenchError.emptyPromptSet("\(file.path) has no text prompt and no 'image:' line")
        }
        return BenchPromptSet(texts: texts, images: images)
    }

    /// The shipped set: `prompts.txt` of `directory` plus every PNG of `directory/images`, by name.
    public static func loadDefault(directory: URL) throws -> BenchPromptSet {
        var set = try load(file: directory.appendingPathComponent(defaultFileName))
        let imagesDir = directory.appendingPathComponent(defaultImagesFolder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: imagesDir.path)) ?? []
        for name in names.filter({ $0.lowercased().hasSuffix(".png") }).sorted() {
            set.images.append(try loadImage(imagesDir.appendingPathComponent(name)))
        }
        return set
    }

    /// Finds assets/bench by walking up from each start (the working directory, then the executable's folder).
    public static func findDefaultDirectory(from starts: [URL]) -> URL? {
        for start in starts {
            var dir = start.standardizedFileURL
            for _ in 0..<6 {
                let candidate = dir.appendingPathComponent("assets/bench")
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent(defaultFileName).path) {
                    return candidate
                }
                dir.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// The first `texts` text prompts and `images` image prompts (nil keeps all).
    public func prefix(texts textLimit: Int?, images imageLimit: Int?) -> BenchPromptSet {
        BenchPromptSet(texts: textLimit.map { Array(texts.prefix($0)) } ?? texts,
                       images: imageLimit.map { Array(images.prefix($0)) } ?? images)
    }

    static func loadImage(_ url: URL) throws -> BenchImage {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw BenchError.image(path: url.path, message: "cannot read it (\(error.localizedDescription))")
        }
        do {
            return BenchImage(name: url.lastPathComponent, image: try ImageDecoder.decode(data, maxPixels: maxImagePixels))
        } catch {
            throw BenchError.image(path: url.path, message: "\(error)")
        }
    }
}
