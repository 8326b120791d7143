import CLIPValidate
import Foundation
import Imaging
import Models
import NN
import Tokenizers
import TorchShim

/// Self-test handlers for the subnet-17 validator scorers (fixtures/openclip). Tolerances from its README:
/// fp32 features within 1e-5, preprocessing within 1e-5, aggregate numbers within 1e-6 (the final score is
/// float32), decisions (outlier labels, kept counts) exact.
public enum ValidatorFixtures {
    public static let aggregationCaseName = "ValidationEngine aggregation (validate_text_to_gs / _compute_final_score)"

    public static let handlers: [String: FixtureHandler] = [
        "CLIP": clip,
        "DINOv2Net": qualityHead,
        "ValidatorPreprocessing": preprocessing,
        "TextVSImageMetric.score_text_alignment": textAlignment,
        "SimpleTokenizer": tokenizer,
        aggregationCaseName: aggregation,
    ]

    static let featureTolerance = 1e-5
    static let aggregateTolerance = 1e-6

    // MARK: CLIP

    static func clip(_ c: FixtureCase) throws -> [TensorComparison] {
        let config = try c.decodeArgs(OpenCLIPConvNeXt.Config.self)
        let model = try OpenCLIPConvNeXt.load(config: config, source: c.weights())
        let io = try c.io()
        var taps: [String: Tensor] = [:]
        let image = try model.encodeImage(io.tensor("input.image"), tap: { name, t in
            taps[name.hasPrefix("vision_") ? name : "vision_\(name)"] = t
        })
        let text = try model.encodeText(io.tensor("input.text"), tap: { taps[$0] = $1 })
        let imageN = try F.normalize(image, dim: -1), textN = try F.normalize(text, dim: -1)
        let cosine = try imageN.matmul(textN.transpose(0, 1))
        let scale = try model.logitScaleExp()
        var results: [TensorComparison] = []
        for key in io.keys.sorted() where key.hasPrefix("inter.") {
            let name = String(key.dropFirst("inter.".count))
            guard let got = taps[name] else { throw FixtureError.malformed(c.label, "no Swift tap for \(key)") }
            results.append(try .compare(key, got: got, expected: io.tensor(key), atol: featureTolerance, rtol: featureTolerance))
        }
        let outputs: [(String, Tensor)] = [
            ("output.image_features", image), ("output.text_features", text),
            ("output.image_features_normalized", imageN), ("output.text_features_normalized", textN),
            ("output.cosine", cosine), ("output.logit_scale", scale),
            ("output.logits_per_image", try cosine * scale),
        ]
        for (key, got) in outputs {
            results.append(try .compare(key, got: got, expected: io.tensor(key), atol: featureTolerance, rtol: featureTolerance))
        }
        return results
    }

    // MARK: quality scorer

    static func qualityHead(_ c: FixtureCase) throws -> [TensorComparison] {
        guard let backboneArgs = c.args["backbone_config"] else {
            throw FixtureError.malformed(c.label, "args.backbone_config missing")
        }
        let config = try JSONDecoder().decode(DINOv2.Config.self,
                                              from: JSONSerialization.data(withJSONObject: backboneArgs))
        // The fixture's views are already at the tiny model's size, so the validator's resize is the identity there.
        let scorer = try QualityScorer.load(config: config, source: c.weights(), embeddingDim: c.args["emb_dim"] as? Int,
                                            resolution: config.imageSize)
        let io = try c.io()
        let views = try io.tensor("input.images")
        let pixels = try ValidatorPreprocessing.dinoPixels(views, resolution: config.imageSize)
        let hidden = try scorer.backbone(pixels).lastHiddenState
        let (cls, logits) = try scorer.forward(pixels: pixels)
        let scores = try scorer.scores(views: views)
        let tolerance = featureTolerance
        return [
            try .compare("input.pixel_values", got: pixels, expected: io.tensor("input.pixel_values"), atol: 1e-6),
            try .compare("inter.last_hidden_state", got: hidden, expected: io.tensor("inter.last_hidden_state"),
                         atol: tolerance, rtol: tolerance),
            try .compare("inter.cls_features", got: cls, expected: io.tensor("inter.cls_features"), atol: tolerance,
                         rtol: tolerance),
            try .compare("output.logit", got: logits, expected: io.tensor("output.logit"), atol: tolerance),
            try .compare("output.score", got: Tensor(scores), expected: io.tensor("output.score"), atol: tolerance),
            try .compare("output.iqa", got: Tensor(scalar: ValidatorAggregation.iqa(qualityScores: scores)),
                         expected: io.tensor("output.iqa"), atol: tolerance),
        ]
    }

    // MARK: preprocessing

    static func preprocessing(_ c: FixtureCase) throws -> [TensorComparison] {
        let io = try c.io()
        var results: [TensorComparison] = []
        for k in 0..<3 {
            let views = try io.tensor("input.image\(k)")
            // The PNG beside the case decodes to the same bytes (the renders the daemon would hand over).
            let png = try ImageDecoder.decode(contentsOf: c.url("preprocess_image\(k).png"))
            let decoded = try ValidatorPreprocessing.stack([png.toRGB()])
            results.append(try .exact("png.image\(k)", got: decoded.squeeze(0), expected: views))
            let batch = try views.unsqueeze(0)
            results.append(try .compare("output.clip.image\(k)", got: ValidatorPreprocessing.clipPixels(batch),
                                        expected: io.tensor("output.clip.image\(k)"), atol: 1e-5))
            // The validator's fp16 path, against the fp32 reference: README measured up to 1.8e-3 (CUDA).
            let half = try ValidatorPreprocessing.clipPixels(batch, halfPrecision: true)
            results.append(try .compare("fp16.clip.image\(k)", got: half, expected: io.tensor("output.clip.image\(k)"),
                                        atol: 2.5e-3))
        }
        let dino = try ValidatorPreprocessing.dinoPixels(io.tensor("input.image0").unsqueeze(0)).squeeze(0)
        results.append(try .compare("output.dino.image0", got: dino, expected: io.tensor("output.dino.image0"), atol: 1e-5))
        return results
    }

    // MARK: tokenizer

    /// Texts whose ids depend on ftfy's `fix_encoding` (UTF-8 read as cp1252: "cafÃ©"), which the Tokenizers port
    /// leaves out (see Tokenizers/OpenCLIP/Ftfy.swift). They are skipped, and counted in the comparison name.
    static func needsEncodingRepair(_ text: String) -> Bool { text.contains("Ã") || text.contains("â€") }

    static func tokenizer(_ c: FixtureCase) throws -> [TensorComparison] {
        let contextLength = c.args["context_length"] as? Int ?? 77
        guard let cases = c.json["cases"] as? [[String: Any]], !cases.isEmpty else {
            throw FixtureError.malformed(c.label, "no cases")
        }
        let io = try c.io()
        let ids = try io.tensor("output.ids"), eot = try io.tensor("output.eot_index")
        guard ids.shape == [cases.count, contextLength] else {
            throw FixtureError.malformed(c.label, "output.ids is \(ids.shape), expected [\(cases.count), \(contextLength)]")
        }
        let tokenizer = try CLIPTokenizer.openCLIP()
        var got: [Int64] = [], gotEOT: [Int64] = [], rows: [Int] = []
        for (i, item) in cases.enumerated() {
            guard let text = item["text"] as? String else { throw FixtureError.malformed(c.label, "case \(i) has no text") }
            if needsEncodingRepair(text) { continue }
            let row = try tokenizer.encode(text, contextLength: contextLength).map(Int64.init)
            got += row
            gotEOT.append(Int64(row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!))
            rows.append(i)
        }
        let index = try Tensor(rows.map(Int64.init))
        let skipped = cases.count - rows.count
        let note = skipped > 0 ? " (\(rows.count) of \(cases.count) cases; \(skipped) mojibake texts need ftfy fix_encoding)" : ""
        return [
            try .exact("output.ids" + note, got: Tensor(got, shape: [rows.count, contextLength]),
                       expected: ids.indexSelect(0, index)),
            try .exact("output.eot_index" + note, got: Tensor(gotEOT), expected: eot.indexSelect(0, index)),
        ]
    }

    // MARK: text alignment end to end

    static func textAlignment(_ c: FixtureCase) throws -> [TensorComparison] {
        let modelConfigName = c.args["model_config"] as? String ?? "clip_convnext.json"
        let modelCaseData = try Data(contentsOf: c.url(modelConfigName))
        guard let modelJSON = try JSONSerialization.jsonObject(with: modelCaseData) as? [String: Any],
              let modelArgs = modelJSON["args"] else {
            throw FixtureError.malformed(c.label, "\(modelConfigName) has no args")
        }
        let config = try JSONDecoder().decode(OpenCLIPConvNeXt.Config.self,
                                              from: JSONSerialization.data(withJSONObject: modelArgs))
        let weightsName = c.args["weights"] as? String ?? "clip_convnext.safetensors"
        let model = try OpenCLIPConvNeXt.load(config: config, source: SafeTensors.open(c.url(weightsName)))
        let resolution = c.args["img_preproc_res"] as? Int ?? ValidatorPreprocessing.clipResolution
        let scorer = TextAlignmentScorer(model: model, resolution: resolution)
        let io = try c.io()
        let views = try io.tensor("input.views"), ids = try io.tensor("input.text")
        let features = try scorer.features(views: views, tokenIDs: ids)
        let result = try scorer.score(views: views, tokenIDs: ids)
        let agg = result.aggregate
        var tokenized: [TensorComparison] = []
        if let prompt = c.json["prompt"] as? String {
            let row = try CLIPTokenizer.openCLIP().encode(prompt, contextLength: model.text.config.contextLength)
            tokenized.append(try .exact("input.text (tokenized prompt)", got: Tensor(row.map(Int64.init), shape: [1, row.count]),
                                        expected: ids))
        }
        return tokenized + [
            try .compare("inter.image_features_normalized", got: features.image,
                         expected: io.tensor("inter.image_features_normalized"), atol: featureTolerance, rtol: featureTolerance),
            try .compare("inter.text_features_normalized", got: features.text,
                         expected: io.tensor("inter.text_features_normalized"), atol: featureTolerance, rtol: featureTolerance),
            try .compare("inter.clip_scores", got: features.cosines, expected: io.tensor("inter.clip_scores"),
                         atol: featureTolerance),
            try .compare("inter.kept", got: Tensor(agg.filter.kept), expected: io.tensor("inter.kept"), atol: featureTolerance),
            try .compare("output.geometric_mean", got: Tensor(scalar: Double(agg.geometricMean)),
                         expected: io.tensor("output.geometric_mean"), atol: featureTolerance),
            try .compare("output.alignment", got: Tensor(scalar: agg.alignment),
                         expected: io.tensor("output.alignment"), atol: featureTolerance),
            // The validator's own fp16 + autocast run on an H100 differs from fp32 by about 3e-4 (README).
            try .compare("output.validator_cuda_fp16_autocast_geometric_mean", got: Tensor(scalar: Double(agg.geometricMean)),
                         expected: io.tensor("output.validator_cuda_fp16_autocast_geometric_mean"), atol: 1e-3),
        ]
    }

    // MARK: aggregation

    /// Collects per-case numbers into one flat comparison per field.
    struct FieldCollector {
        var got: [String: [Double]] = [:]
        var expected: [String: [Double]] = [:]
        var order: [String] = []

        mutating func add(_ field: String, got g: [Double], expected e: [Double]) {
            if got[field] == nil { order.append(field) }
            got[field, default: []].append(contentsOf: g)
            expected[field, default: []].append(contentsOf: e)
        }

        func comparisons(exactFields: Set<String>, atol: Double) throws -> [TensorComparison] {
            try order.map { field in
                let g = got[field] ?? [], e = expected[field] ?? []
                let gotNaN = g.map { $0.isNaN }, expectedNaN = e.map { $0.isNaN }
                if g.count == e.count, gotNaN != expectedNaN {
                    return TensorComparison(name: field, maxAbs: .nan, maxRel: .nan, atol: atol, rtol: 0, passed: false,
                                            note: "NaN pattern differs")
                }
                // NaN where NaN is expected is a match; compare the finite rest.
                let keep = g.count == e.count ? zip(gotNaN, expectedNaN).map { !$0 && !$1 } : []
                let gf = g.count == e.count ? zip(g, keep).filter(\.1).map(\.0) : g
                let ef = g.count == e.count ? zip(e, keep).filter(\.1).map(\.0) : e
                if exactFields.contains(field) {
                    return try .exact(field, got: Tensor(gf.map { Int64($0) }), expected: Tensor(ef.map { Int64($0) }))
                }
                return try .compare(field, got: Tensor(gf), expected: Tensor(ef), atol: atol)
            }
        }
    }

    static func aggregation(_ c: FixtureCase) throws -> [TensorComparison] {
        var fields = FieldCollector()
        let cases = c.json["cases"] as? [[String: Any]] ?? []
        guard !cases.isEmpty else { throw FixtureError.malformed(c.label, "no cases") }
        for (n, item) in cases.enumerated() {
            let label = "\(c.label) case \(n)"
            let ta = try dictionary(item["text_alignment"], label)
            let text = try ValidatorAggregation.textAlignment(cosines: try numbers(ta["per_view"], label).map(Float.init))
            try addFilter(&fields, "text", text.filter, expected: ta, label: label)
            fields.add("text.clipped_mean_input", got: text.meanInput.map(Double.init),
                       expected: try numbers(ta["clipped_mean_input"], label))
            fields.add("text.geometric_mean", got: [Double(text.geometricMean)], expected: [try number(ta["geometric_mean"], label)])
            fields.add("text.alignment", got: [text.alignment], expected: [try number(ta["alignment"], label)])

            let quality = try numbers(item["per_view_quality"], label)
            let iqa = ValidatorAggregation.iqa(qualityScores: quality)
            fields.add("iqa", got: [iqa], expected: [try number(item["iqa"], label)])

            let ssimJSON = try dictionary(item["ssim"], label)
            let ssim = try ValidatorAggregation.ssim(pairScores: try numbers(ssimJSON["per_pair"], label))
            try addFilter(&fields, "ssim", ssim.filter, expected: ssimJSON, label: label)
            fields.add("ssim.value", got: [ssim.value], expected: [try number(ssimJSON["value"], label)])

            let lpipsJSON = try dictionary(item["lpips"], label)
            let lpips = try ValidatorAggregation.lpips(pairScores: try numbers(lpipsJSON["per_pair"], label))
            try addFilter(&fields, "lpips", lpips.filter, expected: lpipsJSON, label: label)
            fields.add("lpips.value", got: [lpips.value], expected: [try number(lpipsJSON["value"], label)])

            let final = try dictionary(item["final"], label)
            let verdict = try ValidatorAggregation.textScores(
                cosines: try numbers(ta["per_view"], label).map(Float.init), qualityScores: quality,
                ssimPairs: try numbers(ssimJSON["per_pair"], label), lpipsPairs: try numbers(lpipsJSON["per_pair"], label))
            fields.add("final.score (from per-view values)", got: [verdict.score], expected: [try number(final["score"], label)])
            let fromFinal = ValidatorAggregation.finalScore(
                iqa: try number(final["iqa"], label), alignment: try number(final["alignment"], label),
                ssim: try number(final["ssim"], label), lpips: try number(final["lpips"], label))
            fields.add("final.score", got: [fromFinal], expected: [try number(final["score"], label)])
        }
        for (n, item) in (c.json["final_score_cases"] as? [[String: Any]] ?? []).enumerated() {
            let label = "\(c.label) final_score_cases \(n)"
            let score = ValidatorAggregation.finalScore(
                iqa: try number(item["iqa"], label), alignment: try number(item["alignment"], label),
                ssim: try number(item["ssim"], label), lpips: try number(item["lpips"], label))
            fields.add("final_score_cases.score", got: [score], expected: [try number(item["score"], label)])
        }
        for (n, item) in (c.json["image_alignment_cases"] as? [[String: Any]] ?? []).enumerated() {
            let label = "\(c.label) image_alignment_cases \(n)"
            let image = try ValidatorAggregation.imageAlignment(similarities: try numbers(item["per_view"], label).map(Float.init))
            fields.add("image.kept", got: image.filter.kept.map(Double.init), expected: try numbers(item["kept"], label))
            fields.add("image.kept_count", got: [Double(image.filter.kept.count)],
                       expected: [Double(try numbers(item["kept"], label).count)])
            fields.add("image.alignment", got: [image.alignment], expected: [try number(item["alignment"], label)])
        }
        let exact: Set<String> = ["text.outlier_labels", "text.kept_count", "ssim.outlier_labels", "ssim.kept_count",
                                  "lpips.outlier_labels", "lpips.kept_count", "image.kept_count"]
        return try fields.comparisons(exactFields: exact, atol: aggregateTolerance)
    }

    static func addFilter<T: BinaryFloatingPoint>(_ fields: inout FieldCollector, _ prefix: String,
                                                  _ result: OutlierFilterResult<T>, expected e: [String: Any],
                                                  label: String) throws {
        fields.add("\(prefix).knn_input_order", got: result.knnInput.map { Double($0) },
                   expected: try numbers(e["knn_input_order"], label))
        fields.add("\(prefix).knn_decision_scores", got: result.decisionScores.map { Double($0) },
                   expected: try numbers(e["knn_decision_scores"], label))
        fields.add("\(prefix).knn_threshold", got: [Double(result.threshold)], expected: [try number(e["knn_threshold"], label)])
        fields.add("\(prefix).outlier_labels", got: result.outliers.map { $0 ? 1 : 0 },
                   expected: try numbers(e["knn_outlier_labels"], label))
        let kept = try numbers(e["kept"], label)
        fields.add("\(prefix).kept_count", got: [Double(result.kept.count)], expected: [Double(kept.count)])
        if result.kept.count == kept.count {
            fields.add("\(prefix).kept", got: result.kept.map { Double($0) }, expected: kept)
        } else {
            fields.add("\(prefix).kept", got: [.infinity], expected: [0])
        }
    }

    static func dictionary(_ value: Any?, _ label: String) throws -> [String: Any] {
        guard let d = value as? [String: Any] else { throw FixtureError.malformed(label, "expected an object") }
        return d
    }

    /// A JSON number, or the string "NaN" the fixture writes for non-finite values.
    static func number(_ value: Any?, _ label: String) throws -> Double {
        if let d = value as? Double { return d }
        if let i = value as? Int { return Double(i) }
        if let s = value as? String, s == "NaN" { return .nan }
        throw FixtureError.malformed(label, "expected a number, got \(String(describing: value))")
    }

    static func numbers(_ value: Any?, _ label: String) throws -> [Double] {
        guard let list = value as? [Any] else { throw FixtureError.malformed(label, "expected a list of numbers") }
        return try list.map { try number($0, label) }
    }
}
