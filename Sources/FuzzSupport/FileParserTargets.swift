import Foundation
import Fixtures
import Imaging
import Models
import NN
import Pipeline
import PLY
import Tokenizers
import TorchShim

/// Every file parser the daemon runs on files it is given, each with seeds taken from the repository's own valid
/// files (`root` is the package folder; the shared fixtures are `root/../shared/fixtures`).
public enum FileParserTargets {
    public static let names = ["safetensors", "ply", "png", "jpeg", "json-config", "tokenizer", "fixture-case", "pth"]

    public static func all(root: URL) throws -> [FileParserTarget] {
        try names.map { try target(named: $0, root: root) }
    }

    public static func target(named name: String, root: URL) throws -> FileParserTarget {
        let shared = root.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
        func file(_ path: String, under base: URL? = nil) throws -> [UInt8] {
            let url = (base ?? root).appendingPathComponent(path)
            do { return Array(try Data(contentsOf: url)) } catch {
                throw ConfigFileError(path: url.path, reason: "fuzz seed cannot be read (\(error.localizedDescription))")
            }
        }
        switch name {
        case "safetensors":
            let paths = ["Tests/ModelsTests/Resources/torch_checkpoints/expected.safetensors",
                         "Tests/ModelsTests/Resources/flux_extra/clip_eos_io.safetensors",
                         "Tests/ModelsTests/Resources/flux_extra/t5_fp16_io.safetensors",
                         "assets/smoke/flux/text_encoder_2/model.safetensors"]
            var seeds = try paths.map { path in
                FuzzSeed(label: path, fileName: "case.safetensors", bytes: try file(path), parse: parseSafeTensors)
            }
            seeds.append(FuzzSeed(label: "fixtures/flux/t5_encoder_io.safetensors", fileName: "case.safetensors",
                                  bytes: try file("flux/t5_encoder_io.safetensors", under: shared), parse: parseSafeTensors))
            return FileParserTarget(name: name, format: .safetensors, seeds: seeds)
        case "ply":
            return FileParserTarget(name: name, format: .ply, seeds: try plySeeds(try file("ply/hamburger.ply", under: shared)))
        case "png":
            let names = ["gray1.png", "gray16.png", "gray_alpha8.png", "gray_trns.png", "palette.png", "palette_trns.png",
                         "rgb8_interlaced.png", "rgba16.png", "rgb_trns.png", "resize_src_RGBA.png"]
            return FileParserTarget(name: name, format: .png, seeds: try names.map { n in
                FuzzSeed(label: n, fileName: "case.png", bytes: try file("Tests/ImagingTests/Resources/" + n), parse: parseImage)
            })
        case "jpeg":
            let names = ["cmyk.jpg", "gray.jpg", "rgb.jpg", "rgb_progressive.jpg"]
            return FileParserTarget(name: name, format: .jpeg, seeds: try names.map { n in
                FuzzSeed(label: n, fileName: "case.jpg", bytes: try file("Tests/ImagingTests/Resources/" + n), parse: parseImage)
            })
        case "json-config":
            return FileParserTarget(name: name, format: .json, seeds: try configSeeds(file: { try file($0) }))
        case "tokenizer":
            let clipVocab = try file("assets/fuzz/clip_tokenizer/vocab.json")
            let clipMerges = try file("assets/fuzz/clip_tokenizer/merges.txt")
            let clipConfig = try file("assets/fuzz/clip_tokenizer/tokenizer_config.json")
            let clipSpecials = try file("assets/fuzz/clip_tokenizer/special_tokens_map.json")
            // transformers reads special_tokens_map.json only when the config has no added_tokens_decoder.
            var plainConfig = try JSONSerialization.jsonObject(with: Data(clipConfig)) as? [String: Any] ?? [:]
            plainConfig["added_tokens_decoder"] = nil
            let clipPlainConfig = Array(try JSONSerialization.data(withJSONObject: plainConfig, options: [.sortedKeys]))
            let clip: (URL) throws -> Void = { url in _ = try CLIPTokenizer(folder: url.deletingLastPathComponent()).encode("a photo of 3 cats") }
            return FileParserTarget(name: name, format: .json, seeds: [
                FuzzSeed(label: "t5_bytes/tokenizer.json", fileName: "tokenizer.json",
                         bytes: try file("Tests/TokenizersTests/Resources/t5_bytes/tokenizer.json")) { url in
                    _ = try T5Tokenizer(tokenizerJSON: url).encode("a photo of 3 cats")
                },
                FuzzSeed(label: "t5_bytes/spiece.model", fileName: "spiece.model",
                         bytes: try file("Tests/TokenizersTests/Resources/t5_bytes/spiece.model")) { url in
                    _ = try T5Tokenizer(spieceModel: url).encode("a photo of 3 cats")
                },
                FuzzSeed(label: "clip_tokenizer/vocab.json", fileName: "vocab.json", bytes: clipVocab,
                         companions: ["merges.txt": clipMerges], parse: clip),
                FuzzSeed(label: "clip_tokenizer/merges.txt", fileName: "merges.txt", bytes: clipMerges,
                         companions: ["vocab.json": clipVocab], parse: clip),
                FuzzSeed(label: "clip_tokenizer/tokenizer_config.json", fileName: "tokenizer_config.json", bytes: clipConfig,
                         companions: ["vocab.json": clipVocab, "merges.txt": clipMerges], parse: clip),
                FuzzSeed(label: "clip_tokenizer/special_tokens_map.json", fileName: "special_tokens_map.json", bytes: clipSpecials,
                         companions: ["vocab.json": clipVocab, "merges.txt": clipMerges, "tokenizer_config.json": clipPlainConfig],
                         parse: clip),
            ])
        case "fixture-case":
            let cases = ["trellis/ss_flow.json", "trellis/slat_dec_gs.json", "flux/vae.json", "lgm/lgm.json",
                         "openclip/quality_head.json", "birefnet/birefnet.json", "trellis/pipeline.json"]
            return FileParserTarget(name: name, format: .json, seeds: try cases.map { path in
                // discover() takes a JSON file for a case when `<stem>_io.safetensors` is beside it.
                FuzzSeed(label: path, fileName: "case.json", bytes: try file(path, under: shared),
                         companions: ["case_io.safetensors": []], parse: parseFixtureCase)
            })
        case "pth":
            let names = ["state_dict.pth", "legacy.pth", "nested_p4.pth"]
            return FileParserTarget(name: name, format: .zip, seeds: try names.map { n in
                FuzzSeed(label: n, fileName: "case.pth", bytes: try file("Tests/ModelsTests/Resources/torch_checkpoints/" + n),
                         parse: parseTorchCheckpoint)
            })
        default:
            throw ConfigFileError(path: name, reason: "no such fuzz target (known: \(names.joined(separator: ", ")))")
        }
    }

    // MARK: parsers, as the daemon calls them

    static func parseSafeTensors(_ url: URL) throws {
        let file = try SafeTensorsFile(url: url)
        for key in file.keys {
            _ = file.info(key)
            _ = try file.rawBytes(key)
            _ = try file.tensor(key)
        }
    }

    static func parseImage(_ url: URL) throws {
        _ = try ImageDecoder.decode(contentsOf: url, maxPixels: 4096 * 4096)
    }

    static func parseTorchCheckpoint(_ url: URL) throws {
        let checkpoint = try TorchCheckpoint(url: url)
        for key in checkpoint.keys {
            _ = checkpoint.info(key)
            _ = try checkpoint.tensor(key)
        }
    }

    static let fixtureRunner = FixtureRunner()

    static func parseFixtureCase(_ url: URL) throws {
        for found in try fixtureRunner.discover(url.deletingLastPathComponent()) {
            _ = (found.className, found.args, found.label)
        }
    }

    /// Model configs as the loaders decode them (the same `ConfigFile` calls), from the smoke assets and fixtures.
    static func configSeeds(file: (String) throws -> [UInt8]) throws -> [FuzzSeed] {
        func decoded<T: Decodable>(_ type: T.Type) -> (URL) throws -> Void {
            { url in _ = try ConfigFile.decode(T.self, from: url) }
        }
        /// A TRELLIS `<ckpt>.json`: {"name", "args"} with the config in args.
        func trellisArgs<T: Decodable>(_ type: T.Type) -> (URL) throws -> Void {
            { url in
                guard let args = try ConfigFile.object(url)["args"] as? [String: Any] else {
                    throw ConfigFileError(path: url.path, reason: "has no 'args' object")
                }
                let data = try JSONSerialization.data(withJSONObject: args)
                _ = try ConfigFile.decoding(url) { try JSONDecoder().decode(T.self, from: data) }
            }
        }
        let entries: [(String, String, (URL) throws -> Void)] = [
            ("assets/smoke/dinov2/config.json", "config.json", decoded(DINOv2.Config.self)),
            ("assets/smoke/birefnet/config.json", "config.json", { url in _ = try BiRefNetConfig.load(url) }),
            ("assets/smoke/flux/transformer/config.json", "config.json", decoded(FluxTransformer2DModel.Config.self)),
            ("assets/smoke/flux/vae/config.json", "config.json", decoded(AutoencoderKL.Config.self)),
            ("assets/smoke/flux/text_encoder/config.json", "config.json", decoded(CLIPTextModel.Config.self)),
            ("assets/smoke/flux/text_encoder_2/config.json", "config.json", decoded(T5EncoderModel.Config.self)),
            ("assets/smoke/flux/scheduler/scheduler_config.json", "scheduler_config.json",
             decoded(FlowMatchEulerScheduler.Config.self)),
            ("assets/smoke/trellis/pipeline.json", "pipeline.json", { url in _ = try TrellisPipelineConfig(url: url) }),
            ("assets/smoke/trellis/ckpts/ss_flow.json", "ss_flow.json", trellisArgs(SparseStructureFlowModel.Config.self)),
            ("assets/smoke/trellis/ckpts/ss_dec.json", "ss_dec.json", trellisArgs(SparseStructureDecoder.Config.self)),
            ("assets/smoke/trellis/ckpts/slat_flow.json", "slat_flow.json", trellisArgs(SLatFlowConfig.self)),
            ("assets/smoke/trellis/ckpts/slat_dec_gs.json", "slat_dec_gs.json", trellisArgs(SLatGaussianDecoderConfig.self)),
        ]
        return try entries.map { path, name, parse in
            FuzzSeed(label: path, fileName: name, bytes: try file(path), parse: parse)
        }
    }

    /// Small PLY seeds derived from the real hamburger splat: its first 64 Gaussians as binary little-endian (as the
    /// daemon writes), as binary big-endian and as ASCII (the other encodings the reader accepts).
    static func plySeeds(_ hamburger: [UInt8]) throws -> [FuzzSeed] {
        let full = try PLYReader.read(Data(hamburger))
        let n = min(64, full.count)
        func prefix(_ values: [Float], _ width: Int) -> [Float] { Array(values.prefix(n * width)) }
        let splat = GaussianSplat(positions: prefix(full.positions, 3), normals: full.normals.map { prefix($0, 3) },
                                  shDC: prefix(full.shDC, 3), shRest: prefix(full.shRest, GaussianSplat.restCount(degree: full.shDegree)),
                                  shDegree: full.shDegree, opacities: prefix(full.opacities, 1),
                                  scales: prefix(full.scales, 3), rotations: prefix(full.rotations, 4))
        let little = Array(try PLYWriter().encode(splat))
        let header = try PLYHeader.parse(Data(little))
        let vertex = header.elements[0]
        let body = Array(little[header.bodyOffset...])
        let width = vertex.properties.count
        func headerText(_ format: String) -> String {
            "ply\nformat \(format) 1.0\nelement vertex \(vertex.count)\n"
                + vertex.properties.map { "property float \($0.name)\n" }.joined() + "end_header\n"
        }
        var big = Array(headerText("binary_big_endian").utf8)
        var ascii = headerText("ascii")
        for row in 0..<vertex.count {
            var fields: [String] = []
            for k in 0..<width {
                let at = (row * width + k) * 4
                let bits = UInt32(body[at]) | UInt32(body[at + 1]) << 8 | UInt32(body[at + 2]) << 16 | UInt32(body[at + 3]) << 24
                big += [UInt8(bits >> 24), UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 8),
                        UInt8(truncatingIfNeeded: bits)]
                fields.append("\(Float(bitPattern: bits))")
            }
            ascii += fields.joined(separator: " ") + "\n"
        }
        let parse: (URL) throws -> Void = { url in _ = try PLYReader.read(contentsOf: url) }
        return [
            FuzzSeed(label: "hamburger.ply (64 rows, binary LE)", fileName: "case.ply", bytes: little, parse: parse),
            FuzzSeed(label: "hamburger.ply (64 rows, binary BE)", fileName: "case.ply", bytes: big, parse: parse),
            FuzzSeed(label: "hamburger.ply (64 rows, ASCII)", fileName: "case.ply", bytes: Array(ascii.utf8), parse: parse),
        ]
    }
}
