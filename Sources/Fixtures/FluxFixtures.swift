import Foundation
import Models
import NN
import TorchShim

/// Self-test handlers of the FLUX family (shared/fixtures/flux): the transformer, CLIP and T5 text encoders, the
/// VAE and the 4-step pipeline, each loaded with its production loader (every key used, shapes checked).
public enum FluxFixtures {
    /// README tolerances for a fp32 reimplementation: per network, and for the pipeline (latents and image).
    public static let networkTolerance = 1e-5
    public static let pipelineTolerance = 1e-4
    /// Cases run in float16 (`"dtype": "float16"` in the case JSON) compare at this tolerance.
    public static let halfTolerance = 1e-2

    public static let handlers: [String: FixtureHandler] = [
        "FluxTransformer2DModel": transformer,
        "CLIPTextModel": clipText,
        "T5EncoderModel": t5Encoder,
        "AutoencoderKL": autoencoder,
        "FluxPipeline": pipeline,
    ]

    /// The case's dtype (`"dtype"` in its JSON; the stored dtype when absent).
    static func dtype(_ fixture: FixtureCase) throws -> DType? {
        guard let name = fixture.json["dtype"] as? String else { return nil }
        guard let d = DType.allCases.first(where: { $0.description == name }) else {
            throw FixtureError.malformed(fixture.label, "unknown dtype '\(name)'")
        }
        return d
    }

    static func tolerance(_ fixture: FixtureCase, _ base: Double) throws -> Double {
        try dtype(fixture) == .float16 || dtype(fixture) == .bfloat16 ? halfTolerance : base
    }

    static func loader(_ fixture: FixtureCase, file: String? = nil) throws -> WeightLoader {
        let source = try file.map { try SafeTensors.open(fixture.url($0)) } ?? fixture.weights()
        return WeightLoader(source, device: .cpu, dtype: try dtype(fixture))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ object: Any, _ label: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: object))
        } catch {
            throw FixtureError.malformed(label, "cannot decode \(T.self): \(error)")
        }
    }

    static func has(_ io: SafeTensorsFile, _ key: String) -> Bool { io.info(key) != nil }

    static func transformer(_ fixture: FixtureCase) throws -> [TensorComparison] {
        let w = try loader(fixture)
        let model = try FluxTransformer2DModel(w, config: fixture.decodeArgs(FluxTransformer2DModel.Config.self))
        try w.checkAllUsed()
        let io = try fixture.io()
        let out = try model(hiddenStates: io.tensor("input.hidden_states"),
                            encoderHiddenStates: io.tensor("input.encoder_hidden_states"),
                            pooledProjections: io.tensor("input.pooled_projections"),
                            timestep: io.tensor("input.timestep"), imgIds: io.tensor("input.img_ids"),
                            txtIds: io.tensor("input.txt_ids"),
                            guidance: has(io, "input.guidance") ? io.tensor("input.guidance") : nil)
        return [try TensorComparison.compare("output", got: out, expected: io.tensor("output"),
                                             atol: tolerance(fixture, networkTolerance))]
    }

    static func clipText(_ fixture: FixtureCase) throws -> [TensorComparison] {
        let w = try loader(fixture)
        let model = try CLIPTextModel(w, config: fixture.decodeArgs(CLIPTextModel.Config.self))
        try w.checkAllUsed()
        let io = try fixture.io()
        let ids = try io.tensor("input.input_ids")
        let out = try model(ids)
        let tol = try tolerance(fixture, networkTolerance)
        var results = [
            try TensorComparison.compare("last_hidden_state", got: out.lastHiddenState,
                                         expected: io.tensor("output.last_hidden_state"), atol: tol),
            try TensorComparison.compare("pooler_output", got: out.poolerOutput,
                                         expected: io.tensor("output.pooler_output"), atol: tol),
        ]
        if has(io, "output.clip_skip_1") {
            results.append(try TensorComparison.compare("clip_skip_1", got: model.hiddenState(ids, clipSkip: 1),
                                                        expected: io.tensor("output.clip_skip_1"), atol: tol))
        }
        return results
    }

    static func t5Encoder(_ fixture: FixtureCase) throws -> [TensorComparison] {
        let w = try loader(fixture)
        let model = try T5EncoderModel(w, config: fixture.decodeArgs(T5EncoderModel.Config.self))
        try w.checkAllUsed()
        let io = try fixture.io()
        let out = try model(io.tensor("input.input_ids"))
        return [try TensorComparison.compare("last_hidden_state", got: out,
                                             expected: io.tensor("output.last_hidden_state"),
                                             atol: tolerance(fixture, networkTolerance))]
    }

    static func autoencoder(_ fixture: FixtureCase) throws -> [TensorComparison] {
        let w = try loader(fixture)
        let vae = try AutoencoderKL(w, config: fixture.decodeArgs(AutoencoderKL.Config.self))
        try w.checkAllUsed()
        let io = try fixture.io()
        let tol = try tolerance(fixture, networkTolerance)
        var results: [TensorComparison] = []
        if has(io, "input.z") {
            results.append(try TensorComparison.compare("decode", got: vae.decode(io.tensor("input.z")),
                                                        expected: io.tensor("output"), atol: tol))
        }
        if has(io, "input.x") {
            let dist = try vae.encode(io.tensor("input.x"))
            results.append(try TensorComparison.compare("latent_mean", got: dist.mean,
                                                        expected: io.tensor("output.latent_mean"), atol: tol))
            results.append(try TensorComparison.compare("latent_logvar", got: dist.logvar,
                                                        expected: io.tensor("output.latent_logvar"), atol: tol))
        }
        return results
    }

    /// Loads the transformer and VAE named in `args.components` (stems in the same folder) and runs the sampler.
    static func pipeline(_ fixture: FixtureCase) throws -> [TensorComparison] {
        let args = fixture.args
        guard let components = args["components"] as? [String: String], let tStem = components["transformer"],
              let vStem = components["vae"] else {
            throw FixtureError.malformed(fixture.label, "args.components must name a transformer and a vae")
        }
        func component(_ stem: String) throws -> (FixtureCase, WeightLoader) {
            let url = fixture.url("\(stem).json")
            guard let data = FileManager.default.contents(atPath: url.path),
                  let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw FixtureError.malformed(fixture.label, "cannot read component \(url.lastPathComponent)")
            }
            let c = FixtureCase(directory: fixture.directory, stem: stem, json: json)
            return (c, try loader(c))
        }
        let (tCase, tw) = try component(tStem)
        let transformer = try FluxTransformer2DModel(tw, config: tCase.decodeArgs(FluxTransformer2DModel.Config.self))
        try tw.checkAllUsed()
        let (vCase, vw) = try component(vStem)
        let vae = try AutoencoderKL(vw, config: vCase.decodeArgs(AutoencoderKL.Config.self))
        try vw.checkAllUsed()
        let scheduler = try decode(FlowMatchEulerScheduler.Config.self, args["scheduler"] ?? [String: Any](), fixture.label)
        let pipe = try FluxPipeline(transformer: transformer, vae: vae, schedulerConfig: scheduler)
        guard pipe.vaeScaleFactor == (args["vae_scale_factor"] as? Int ?? pipe.vaeScaleFactor) else {
            throw FixtureError.malformed(fixture.label, "vae_scale_factor disagrees with the VAE config")
        }

        let io = try fixture.io()
        let options = FluxPipeline.Options(height: args["height"] as? Int ?? 1024, width: args["width"] as? Int ?? 1024,
                                           steps: args["num_inference_steps"] as? Int ?? 4,
                                           guidanceScale: args["guidance_scale"] as? Double ?? 0)
        let embeddings = FluxPromptEmbeddings(promptEmbeds: try io.tensor("input.prompt_embeds"),
                                              pooledPromptEmbeds: try io.tensor("input.pooled_prompt_embeds"))
        let latents = has(io, "input.latents") ? try io.tensor("input.latents") : nil
        let generator = try (args["seed"] as? Int).map { try Generator(seed: UInt64($0)) }
        let tol = try tolerance(fixture, pipelineTolerance)
        var results: [TensorComparison] = []
        let out = try pipe(embeddings: embeddings, options: options, latents: latents, generator: generator) { i, x in
            let key = "inter.latents_after_step\(i)"
            if has(io, key) {
                results.append(try TensorComparison.compare("latents_after_step\(i)", got: x, expected: io.tensor(key), atol: tol))
            }
        }
        results.append(try TensorComparison.compare("sigmas", got: Tensor(out.sigmas), expected: io.tensor("output.sigmas"),
                                                    atol: 1e-7))
        results.append(try TensorComparison.compare("timesteps", got: Tensor(out.timesteps),
                                                    expected: io.tensor("output.timesteps"), atol: 1e-4))
        results.append(try TensorComparison.compare("image", got: out.images, expected: io.tensor("output.image"), atol: tol))
        return results
    }
}
