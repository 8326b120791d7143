import Foundation
import Imaging
import Models
import Pipeline
import NN
import TorchShim

/// Self-test handlers of the BiRefNet fixtures (fixtures/birefnet/README.md), all in float32 on the CPU:
/// - `BiRefNet`: every `*_io*.safetensors` of the case; each tensor in it (intermediates by module path, logits,
///   pred) against the Swift forward pass.
/// - `BiRefNetE2E`: PNG -> Pillow resize -> normalisation -> model -> both mask recipes -> RGBA.
/// - `DeformConv2d`: the standalone `torchvision.ops.deform_conv2d` cases.
public enum BiRefNetFixtures {
    public static let handlers: [String: FixtureHandler] = [
        "BiRefNet": runNetwork,
        "BiRefNetE2E": runEndToEnd,
        "DeformConv2d": runDeformConv,
    ]

    /// Tolerances of the README ("Suggested tolerances for an fp32 port").
    public static func tolerance(_ name: String) -> (atol: Double, rtol: Double) {
        if name.hasPrefix("bb") || name.hasPrefix("forward_enc") { return (1e-4, 1e-4) }
        if name.hasPrefix("squeeze_module") || name.hasPrefix("decoder.") { return (2e-4, 0) }
        if name == "logits" { return (1e-3, 0) }
        return (1e-4, 0)  // pred and float alphas
    }
    public static let deformConvTolerance = 1e-5
    /// uint8 masks may differ by one level where truncation meets rounding noise.
    public static let uint8Tolerance = 1.0

    // MARK: discovery

    /// Finds BiRefNet cases in a folder laid out as `<p>_config.json`, `<p>.safetensors`, `<p>_io*.safetensors`
    /// (metadata `weights` names the weights), `<p>_e2e.safetensors` (metadata `png`) and
    /// `deform_conv2d_unit.safetensors`, whatever the prefix. io files already listed by a JSON case of the
    /// folder are left to that case.
    public static func scan(_ directory: URL) throws -> [FixtureCase] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        let present = Set(names)
        var covered = Set<String>()
        for name in names where name.hasSuffix(".json") {
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  json["name"] is String, let io = json["io"] as? [String] else { continue }
            covered.formUnion(io)
        }
        var cases: [FixtureCase] = []
        for name in names where name.hasSuffix("_config.json") {
            let prefix = String(name.dropLast("_config.json".count))
            guard present.contains("\(prefix).safetensors"),
                  let data = try? Data(contentsOf: directory.appendingPathComponent(name)),
                  let args = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            for file in names where file.hasPrefix("\(prefix)_io") && file.hasSuffix(".safetensors") && !covered.contains(file) {
                let metadata = try SafeTensorsFile(url: directory.appendingPathComponent(file)).metadata
                let json: [String: Any] = ["name": "BiRefNet", "args": args, "io": [file],
                                           "weights": metadata["weights"] ?? "\(prefix).safetensors"]
                cases.append(FixtureCase(directory: directory, stem: String(file.dropLast(".safetensors".count)), json: json))
            }
            let e2e = "\(prefix)_e2e.safetensors"
            if present.contains(e2e) {
                let metadata = try SafeTensorsFile(url: directory.appendingPathComponent(e2e)).metadata
                var json: [String: Any] = ["name": "BiRefNetE2E", "args": args, "e2e": e2e,
                                           "weights": metadata["weights"] ?? "\(prefix).safetensors"]
                if let png = metadata["png"] { json["png"] = png }
                cases.append(FixtureCase(directory: directory, stem: "\(prefix)_e2e", json: json))
            }
        }
        let unit = "deform_conv2d_unit.safetensors"
        if present.contains(unit) {
            cases.append(FixtureCase(directory: directory, stem: "deform_conv2d_unit",
                                     json: ["name": "DeformConv2d", "args": [String: Any](), "units": unit]))
        }
        return cases
    }

    // MARK: handlers

    static func loadModel(_ fixture: FixtureCase, weights name: String?) throws -> BiRefNet {
        let file = name ?? fixture.json["weights"] as? String ?? "\(fixture.stem).safetensors"
        let config = try fixture.decodeArgs(BiRefNetConfig.self)
        return try BiRefNet(WeightLoader(SafeTensors.open(fixture.url(file)), device: .cpu, dtype: .float32), config: config)
    }

    static func notProduced(_ name: String) -> TensorComparison {
        TensorComparison(name: name, maxAbs: .infinity, maxRel: .infinity, atol: 0, rtol: 0, passed: false,
                         note: "not produced by the Swift model")
    }

    public static func runNetwork(_ fixture: FixtureCase) throws -> [TensorComparison] {
        let names = fixture.json["io"] as? [String] ?? ["\(fixture.stem)_io.safetensors"]
        var models: [String: BiRefNet] = [:]
        var comparisons: [TensorComparison] = []
        for name in names {
            let io = try SafeTensorsFile(url: fixture.url(name))
            let weightsName = io.metadata["weights"] ?? fixture.json["weights"] as? String ?? "\(fixture.stem).safetensors"
            let model = try models[weightsName] ?? loadModel(fixture, weights: weightsName)
            models[weightsName] = model
            var produced: [String: Tensor] = [:]
            let logits = try model.forward(io.tensor("input")) { produced[$0] = $1 }
            produced["pred"] = try logits.sigmoid()
            let label = names.count > 1 ? "\(name.replacingOccurrences(of: ".safetensors", with: "")) " : ""
            for key in io.keys where key != "input" {
                guard let got = produced[key] else { comparisons.append(notProduced(label + key)); continue }
                let (atol, rtol) = tolerance(key)
                comparisons.append(try .compare(label + key, got: got, expected: io.tensor(key), atol: atol, rtol: rtol))
            }
        }
        return comparisons
    }

    public static func runEndToEnd(_ fixture: FixtureCase) throws -> [TensorComparison] {
        guard let e2eName = fixture.json["e2e"] as? String else { throw FixtureError.malformed(fixture.label, "no \"e2e\" file named") }
        let e2e = try SafeTensorsFile(url: fixture.url(e2eName))
        guard let png = e2e.metadata["png"] ?? fixture.json["png"] as? String else {
            throw FixtureError.malformed(fixture.label, "\(e2eName) names no PNG (metadata 'png')")
        }
        let model = try loadModel(fixture, weights: e2e.metadata["weights"])
        let expectedInput = try e2e.tensor("input")
        // The fixture's Pillow version decides the resize pass order (Pillow 13 changed it).
        let pillowMajor = Int(e2e.metadata["pillow"]?.split(separator: ".").first ?? "") ?? 12
        let options = BiRefNetRemoverOptions(inputWidth: expectedInput.size(3), inputHeight: expectedInput.size(2),
                                             resizePassOrder: pillowMajor >= 13 ? .pillow13 : .horizontalFirst)
        let remover = try BiRefNetRemover(model: model, options: options)

        let image = try ImageDecoder.decode(contentsOf: fixture.url(png))
        let (w, h) = (image.width, image.height)
        func u8(_ img: Image) throws -> Tensor { try Tensor(img.pixels, shape: [img.height, img.width, img.channels]) }
        var out: [TensorComparison] = []
        out.append(try .exact("image_rgb_uint8_hwc", got: u8(image.toRGB()), expected: e2e.tensor("image_rgb_uint8_hwc")))
        let resized = try remover.resizedRGB(image)
        out.append(try .exact("resized_rgb_uint8_hwc", got: u8(resized), expected: e2e.tensor("resized_rgb_uint8_hwc")))
        let input = try remover.inputTensor(resized)
        out.append(try .compare("input", got: input, expected: expectedInput, atol: 1e-6))
        let logits = try model.forward(input)
        let pred = try logits.sigmoid()
        out.append(try .compare("logits", got: logits, expected: e2e.tensor("logits"), atol: tolerance("logits").atol))
        out.append(try .compare("pred", got: pred, expected: e2e.tensor("pred"), atol: tolerance("pred").atol))
        out.append(try .compare("alpha_inference_py_float", got: remover.resizedPrediction(pred, width: w, height: h),
                                expected: e2e.tensor("alpha_inference_py_float"), atol: tolerance("alpha").atol))
        let alpha = try remover.alpha(fromPrediction: pred, width: w, height: h, method: .bilinearFloat)
        out.append(try .compare("alpha_inference_py_uint8", got: u8(alpha).squeeze(-1),
                                expected: e2e.tensor("alpha_inference_py_uint8"), atol: uint8Tolerance))
        out.append(try .compare("pred_uint8_model_size", got: BiRefNetRemover.quantise(pred).squeeze(0).squeeze(0),
                                expected: e2e.tensor("pred_uint8_model_size"), atol: uint8Tolerance))
        let card = try remover.alpha(fromPrediction: pred, width: w, height: h, method: .pillowBicubic)
        out.append(try .compare("alpha_hf_card_uint8", got: u8(card).squeeze(-1),
                                expected: e2e.tensor("alpha_hf_card_uint8"), atol: uint8Tolerance))
        // The public entry point gives the same alpha and keeps the colours.
        let rgba = try u8(remover.removeBackground(image))
        out.append(try .compare("removeBackground alpha", got: rgba.select(2, 3),
                                expected: e2e.tensor("alpha_inference_py_uint8"), atol: uint8Tolerance))
        out.append(try .exact("removeBackground rgb", got: rgba.slice(2, 0, 3), expected: e2e.tensor("image_rgb_uint8_hwc")))
        return out
    }

    public static func runDeformConv(_ fixture: FixtureCase) throws -> [TensorComparison] {
        var name = "deform_conv2d_unit.safetensors"
        if let s = fixture.json["units"] as? String { name = s }
        if let d = fixture.json["units"] as? [String: Any], let s = d["deform_conv2d"] as? String { name = s }
        let file = try SafeTensorsFile(url: fixture.url(name))
        var out: [TensorComparison] = []
        var i = 0
        while file.info("case\(i).input") != nil {
            let p = "case\(i)."
            let meta = try file.tensor(p + "meta_kernel_padding").toArray(Int64.self)
            guard meta.count == 2 else { throw FixtureError.malformed(fixture.label, "\(p)meta_kernel_padding is not [k, pad]") }
            let weight = try file.tensor(p + "weight")
            guard weight.size(2) == Int(meta[0]) else {
                throw FixtureError.malformed(fixture.label, "\(p)weight \(weight.shape) disagrees with kernel \(meta[0])")
            }
            let pad = Int(meta[1])
            let got = try DeformConv2d.apply(input: file.tensor(p + "input"), offset: file.tensor(p + "offset"),
                                             mask: file.tensor(p + "mask"), weight: weight, padding: (pad, pad))
            out.append(try .compare(p + "output (k=\(meta[0]))", got: got, expected: file.tensor(p + "output"),
                                    atol: deformConvTolerance))
            i += 1
        }
        if out.isEmpty { throw FixtureError.malformed(fixture.label, "\(name) holds no case0.*") }
        return out
    }
}
