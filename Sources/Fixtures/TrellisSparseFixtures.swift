import Foundation
import Models
import NN
import TorchShim

/// Self-test handlers of the sparse half of TRELLIS (fixtures/trellis: slat_flow, slat_dec_gs).
/// Tolerances from the fixture README: single network atol 1e-4 + rtol 1e-4, Gaussian attributes atol 1e-4,
/// coordinates and index maps exact.
public enum TrellisSparseFixtures {
    public static let networkATol = 1e-4
    public static let networkRTol = 1e-4
    public static let gaussianATol = 1e-4

    public static let handlers: [String: FixtureHandler] = [
        "SLatFlowModel": slatFlow,
        "ElasticSLatFlowModel": slatFlow,
        "SLatGaussianDecoder": gaussianDecoder,
        "ElasticSLatGaussianDecoder": gaussianDecoder,
    ]

    /// Loads a SLat flow from a case (weights checked: every key used, every shape right).
    public static func loadFlow(_ c: FixtureCase, device: Device = .cpu, dtype: DType? = nil) throws -> SLatFlowModel {
        let loader = WeightLoader(try c.weights(), device: device, dtype: dtype)
        let model = try SLatFlowModel(loader, config: c.decodeArgs(SLatFlowConfig.self))
        try loader.checkAllUsed()
        return model
    }

    /// Loads a Gaussian decoder from a case (weights checked).
    public static func loadDecoder(_ c: FixtureCase, device: Device = .cpu, dtype: DType? = nil) throws -> SLatGaussianDecoder {
        let loader = WeightLoader(try c.weights(), device: device, dtype: dtype)
        let model = try SLatGaussianDecoder(loader, config: c.decodeArgs(SLatGaussianDecoderConfig.self))
        try loader.checkAllUsed()
        return model
    }

    static func slatFlow(_ c: FixtureCase) throws -> [TensorComparison] {
        let model = try loadFlow(c)
        let io = try c.io()
        var captured: [String: Tensor] = [:]
        let x = try SparseTensor(coords: io.tensor("input.coords"), feats: io.tensor("input.feats"))
        let out = try model(x, t: io.tensor("input.t"), cond: io.tensor("input.cond")) { captured[$0] = $1 }
        var results = [
            try TensorComparison.compare("output.feats", got: out.feats, expected: io.tensor("output.feats"),
                                         atol: networkATol, rtol: networkRTol),
            try TensorComparison.exact("output.coords", got: out.coords, expected: io.tensor("output.coords")),
        ]
        results += try compareCaptured(captured, io: io, prefix: "inter.")

        let x2 = try SparseTensor(coords: io.tensor("b2.input.coords"), feats: io.tensor("b2.input.feats"))
        let out2 = try model(x2, t: io.tensor("b2.input.t"), cond: io.tensor("b2.input.cond"))
        results.append(try TensorComparison.compare("b2.output.feats", got: out2.feats, expected: io.tensor("b2.output.feats"),
                                                    atol: networkATol, rtol: networkRTol))
        return results
    }

    static func gaussianDecoder(_ c: FixtureCase) throws -> [TensorComparison] {
        let model = try loadDecoder(c)
        let io = try c.io()
        var captured: [String: Tensor] = [:]
        let x = try SparseTensor(coords: io.tensor("input.coords"), feats: io.tensor("input.feats"))
        let gaussians = try model(x) { captured[$0] = $1 }
        var results = try compareCaptured(captured, io: io, prefix: "inter.")
        if let raw = captured["raw_feats"] {
            results.append(try TensorComparison.compare("output.raw_feats", got: raw, expected: io.tensor("output.raw_feats"),
                                                        atol: networkATol, rtol: networkRTol))
        } else {
            throw FixtureError.malformed(c.label, "the decoder did not report raw_feats")
        }
        results += try compareGaussians(gaussians, io: io, prefix: "output.")
        results.append(try TensorComparison.compare("offset_perturbation", got: model.offsetPerturbation,
                                                    expected: io.tensor("offset_perturbation"), atol: 0))
        for k in 0..<model.config.numBlocks where io.info("swin.block\(k).window_coord") != nil {
            let shift = model.config.windowShift(block: k)
            results.append(try TensorComparison.exact("swin.block\(k).shift", got: Tensor([Int32(shift), Int32(shift), Int32(shift)]),
                                                      expected: io.tensor("swin.block\(k).shift")))
            results.append(try TensorComparison.exact("swin.block\(k).window_coord",
                                                      got: x.layout.windowCoords(size: model.config.windowSize, shift: shift),
                                                      expected: io.tensor("swin.block\(k).window_coord")))
        }
        return results
    }

    /// Raw fields (`<prefix>raw._xyz` ...) and activated values (`<prefix>xyz` ...) of decoded Gaussians.
    public static func compareGaussians(_ g: TrellisGaussians, io: SafeTensorsFile, prefix: String,
                                        atol: Double = gaussianATol) throws -> [TensorComparison] {
        let pairs: [(String, Tensor)] = [
            ("raw._xyz", g.xyz), ("raw._features_dc", g.featuresDC), ("raw._scaling", g.scaling),
            ("raw._rotation", g.rotation), ("raw._opacity", g.opacity),
            ("xyz", try g.activatedXYZ()), ("features_dc", try g.activatedFeaturesDC()), ("opacity", try g.activatedOpacity()),
            ("scaling", try g.activatedScaling()), ("rotation", try g.activatedRotation()),
        ]
        return try pairs.map { name, got in
            try TensorComparison.compare(prefix + name, got: got, expected: io.tensor(prefix + name), atol: atol)
        }
    }

    /// Every `<prefix><name>` tensor of the io file against the forward's capture of `<name>` (floats with the
    /// network tolerance, integers exactly). A missing capture is a failure.
    static func compareCaptured(_ captured: [String: Tensor], io: SafeTensorsFile, prefix: String) throws -> [TensorComparison] {
        try io.keys.filter { $0.hasPrefix(prefix) }.sorted().map { key in
            let name = String(key.dropFirst(prefix.count))
            let expected = try io.tensor(key)
            guard let got = captured[name] else {
                return TensorComparison(name: key, maxAbs: .infinity, maxRel: .infinity, atol: 0, rtol: 0, passed: false,
                                        note: "not produced by the forward pass")
            }
            if expected.dtype.isFloatingPoint {
                return try TensorComparison.compare(key, got: got, expected: expected, atol: networkATol, rtol: networkRTol)
            }
            return try TensorComparison.exact(key, got: got, expected: expected)
        }
    }
}
