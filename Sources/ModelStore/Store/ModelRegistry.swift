/// The models the pipelines need: repositories, files, licences, gating, sizes, parameter counts.
///
/// Revisions: no commit hash of these hub repositories could be verified from here, so every entry
/// is unpinned (`main`, `isPinned == false`) rather than pinned to an invented hash.
/// Sizes are approximate metadata (parameter count x stored dtype), never used to verify downloads:
/// verification uses the sizes and hashes the hub lists.
/// The short name of every model in the registry: code names a model by one of these, never by a string literal.
public enum ModelID: String, CaseIterable, Sendable {
    case trellisImageLarge = "trellis-image-large"
    case dinov2LargeReg = "dinov2-large-reg"
    case flux1Schnell = "flux1-schnell"
    case clipConvnextLargeD = "clip-convnext-large-d"
    case dinov2Small = "dinov2-small"
    case qualityScorer = "quality-scorer"
    case birefnet = "birefnet"
    case lgm = "lgm"
    case imagedream = "imagedream"
    case mvdream = "mvdream"
    case sd35LargeTurbo = "sd35-large-turbo"
}

public enum ModelRegistry {
    private static let trellisCheckpoints = [
        "ss_flow_img_dit_L_16l8_fp16",
        "ss_dec_conv3d_16l8_fp16",
        "slat_flow_img_dit_L_64l8p2_fp16",
        "slat_dec_gs_swin8_B_64l8gs32_fp16",
    ]

    private static func weightsAndConfigs(_ folders: [String]) -> [FileSpec] {
        folders.flatMap { [FileSpec.glob("\($0)/*.json"), .glob("\($0)/*.safetensors")] }
    }

    public static let models: [ModelSpec] = [
        ModelSpec(
            name: ModelID.trellisImageLarge.rawValue,
            repo: "microsoft/TRELLIS-image-large",
            revision: "main",
            files: [.file("pipeline.json")]
                + trellisCheckpoints.flatMap { [FileSpec.file("ckpts/\($0).json"), .file("ckpts/\($0).safetensors")] },
            purpose: "image -> 3D Gaussians (sparse-structure flow + decoder, SLat flow, Gaussian decoder only)",
            licence: LicenceInfo(name: "MIT", verified: true,
                                 source: "shared/docs/REFERENCE.md section 4 (weights microsoft/TRELLIS-image-large, MIT)"),
            gating: .open,
            approxDownloadBytes: 2_630_000_000,
            components: [
                WeightComponent(name: "ss_flow_img_dit_L_16l8_fp16", parameters: 555_543_560, gpuDType: .fp16),
                WeightComponent(name: "ss_dec_conv3d_16l8_fp16", parameters: 73_671_201, gpuDType: .fp16),
                WeightComponent(name: "slat_flow_img_dit_L_64l8p2_fp16", parameters: 600_432_520, gpuDType: .fp16),
                WeightComponent(name: "slat_dec_gs_swin8_B_64l8gs32_fp16", parameters: 85_369_024, gpuDType: .fp16),
            ],
            inDefaultPipeline: true,
            note: "parameter counts from shared/fixtures/trellis manifests; mesh and radiance-field decoders are not fetched"),
        ModelSpec(
            name: ModelID.dinov2LargeReg.rawValue,
            repo: "facebook/dinov2-with-registers-large",
            revision: "main",
            files: [.file("config.json"), .file("model.safetensors")],
            purpose: "TRELLIS image conditioning (DINOv2 ViT-L/14 with registers)",
            licence: LicenceInfo(name: "Apache-2.0", verified: false,
                                 source: "the -base and -small cards of the same family state apache-2.0; the -large card was not read"),
            gating: .open,
            approxDownloadBytes: 1_220_000_000,
            components: [WeightComponent(name: "dinov2_vitl14_reg", parameters: 304_000_000, gpuDType: .fp32)],
            inDefaultPipeline: true),
        ModelSpec(
            name: ModelID.flux1Schnell.rawValue,
            repo: "black-forest-labs/FLUX.1-schnell",
            revision: "main",
            files: [.file("model_index.json"), .glob("scheduler/*.json"), .glob("tokenizer/*"), .glob("tokenizer_2/*")]
                + weightsAndConfigs(["text_encoder", "text_encoder_2", "transformer", "vae"]),
            purpose: "text -> image (4 steps), diffusers layout; the single-file flux1-schnell.safetensors is not fetched",
            licence: LicenceInfo(name: "Apache-2.0", verified: true,
                                 source: "model card (license: apache-2.0); shared/docs/REFERENCE.md section 6"),
            gating: .gated("click-through: accept the terms on the hub page (gated since 2025, access is granted at once)"),
            approxDownloadBytes: 33_700_000_000,
            components: [
                WeightComponent(name: "transformer", parameters: 11_900_000_000, gpuDType: .bf16),
                WeightComponent(name: "text_encoder_2 (T5-XXL encoder)", parameters: 4_760_000_000, gpuDType: .bf16),
                WeightComponent(name: "text_encoder (CLIP-L)", parameters: 123_000_000, gpuDType: .bf16),
                WeightComponent(name: "vae", parameters: 84_000_000, gpuDType: .bf16),
            ],
            inDefaultPipeline: true,
            note: "gating per modal-labs/modal-examples#1301 and evalstate/mcp-hfspace#15 (2025)"),
        ModelSpec(
            name: ModelID.clipConvnextLargeD.rawValue,
            repo: "laion/CLIP-convnext_large_d.laion2B-s26B-b102K-augreg",
            revision: "main",
            files: [.firstOf(["open_clip_model.safetensors", "open_clip_pytorch_model.bin"])],
            purpose: "validator text-image alignment (open_clip convnext_large_d, laion2b_s26b_b102k_augreg)",
            licence: LicenceInfo(name: "MIT", verified: true, source: "model card README (license: mit)"),
            gating: .open,
            approxDownloadBytes: 1_400_000_000,
            components: [WeightComponent(name: "convnext_large_d CLIP", parameters: 350_000_000, gpuDType: .fp32)],
            inDefaultPipeline: true,
            note: "the hub repo id has a dot before laion2B (not a dash); safetensors is preferred, the pickle is the fallback"),
        ModelSpec(
            name: ModelID.dinov2Small.rawValue,
            repo: "facebook/dinov2-small",
            revision: "main",
            files: [.file("config.json"), .firstOf(["model.safetensors", "pytorch_model.bin"])],
            purpose: "validator image-quality backbone (DINOv2 ViT-S/14)",
            licence: LicenceInfo(name: "Apache-2.0", verified: false, source: "not checked against the model card"),
            gating: .open,
            approxDownloadBytes: 88_000_000,
            components: [WeightComponent(name: "dinov2_vits14", parameters: 22_000_000, gpuDType: .fp32)],
            inDefaultPipeline: true),
        ModelSpec(
            name: ModelID.qualityScorer.rawValue,
            repo: "404-Gen/validation",
            revision: "main",
            files: [.firstOf(["quality_scorer.safetensors", "quality_scorer.pth"])],
            purpose: "validator image-quality head (DINOv2Net: backbone + emb/score heads)",
            licence: LicenceInfo(name: "unknown", verified: false, source: "no model card was readable"),
            gating: .open,
            approxDownloadBytes: 89_000_000,
            components: [WeightComponent(name: "DINOv2Net quality head", parameters: 22_200_000, gpuDType: .fp32)],
            inDefaultPipeline: true,
            note: "the validator code read (404-Repo/three-gen-subnet validation/engine/models/quality_model.py) loads "
                + "quality_scorer.pth, in one version at revision 4438c19183d7b13f56cd9ce2ce08964bc072533b; "
                + "quality_scorer.safetensors (issue text) is preferred when the repo has it"),
        ModelSpec(
            name: ModelID.birefnet.rawValue,
            repo: "ZhengPeng7/BiRefNet",
            revision: "main",
            files: [.file("config.json"), .file("model.safetensors")],
            purpose: "background removal (Swin-L BiRefNet, 1024^2); the repo's .py files are not fetched",
            licence: LicenceInfo(name: "MIT", verified: true, source: "model card (license: mit)"),
            gating: .open,
            approxDownloadBytes: 885_000_000,
            components: [WeightComponent(name: "BiRefNet", parameters: 220_176_498, gpuDType: .fp16)],
            inDefaultPipeline: true,
            note: "parameter count from shared/fixtures/birefnet manifest"),
        ModelSpec(
            name: ModelID.lgm.rawValue,
            repo: "ashawkey/LGM",
            revision: "main",
            files: [.file("model_fp16_fixrot.safetensors")],
            purpose: "4 views -> 3D Gaussians (LGM 'big')",
            licence: LicenceInfo(name: "MIT", verified: true, source: "model card (license: mit)"),
            gating: .open,
            approxDownloadBytes: 830_000_000,
            components: [WeightComponent(name: "LGM big", parameters: 415_042_848, gpuDType: .fp16)],
            inDefaultPipeline: false,
            note: "parameter count from shared/fixtures/lgm manifest"),
        ModelSpec(
            name: ModelID.imagedream.rawValue,
            repo: "ashawkey/imagedream-ipmv-diffusers",
            revision: "main",
            files: [.file("model_index.json"), .glob("*/*.json"), .glob("*/*.safetensors"), .glob("tokenizer/*")],
            purpose: "image -> 4 views for LGM (ImageDream multi-view diffusion, fp16)",
            licence: LicenceInfo(name: "unknown", verified: false, source: "model card not readable from here"),
            gating: .open,
            approxDownloadBytes: 4_000_000_000,
            components: [
                WeightComponent(name: "unet (MultiViewUNetModel, ip)", parameters: 941_672_900, gpuDType: .fp16),
                WeightComponent(name: "text_encoder (OpenCLIP ViT-H text)", parameters: 354_000_000, gpuDType: .fp16),
                WeightComponent(name: "image_encoder (CLIP ViT-H/14 vision)", parameters: 632_000_000, gpuDType: .fp16),
                WeightComponent(name: "vae", parameters: 83_700_000, gpuDType: .fp16),
            ],
            inDefaultPipeline: false,
            note: "file layout assumed from the mvdream_diffusers converter (--half --to_safetensors); not listed from the hub"),
        ModelSpec(
            name: ModelID.mvdream.rawValue,
            repo: "ashawkey/mvdream-sd2.1-diffusers",
            revision: "main",
            files: [.file("model_index.json"), .glob("*/*.json"), .glob("*/*.safetensors"), .glob("tokenizer/*")],
            purpose: "text -> 4 views for LGM (MVDream multi-view diffusion, fp16)",
            licence: LicenceInfo(name: "OpenRAIL", verified: true, source: "model card (license: openrail)"),
            gating: .open,
            approxDownloadBytes: 2_600_000_000,
            components: [
                WeightComponent(name: "unet (MultiViewUNetModel)", parameters: 867_572_164, gpuDType: .fp16),
                WeightComponent(name: "text_encoder (OpenCLIP ViT-H text)", parameters: 354_000_000, gpuDType: .fp16),
                WeightComponent(name: "vae", parameters: 83_700_000, gpuDType: .fp16),
            ],
            inDefaultPipeline: false,
            note: "file layout assumed from the mvdream_diffusers converter; not listed from the hub"),
        ModelSpec(
            name: ModelID.sd35LargeTurbo.rawValue,
            repo: "stabilityai/stable-diffusion-3.5-large-turbo",
            revision: "main",
            files: [.file("model_index.json"), .glob("scheduler/*.json"),
                    .glob("tokenizer/*"), .glob("tokenizer_2/*"), .glob("tokenizer_3/*")]
                + weightsAndConfigs(["text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae"]),
            purpose: "text -> image alternative (4 steps), diffusers layout; the single-file checkpoint is not fetched",
            licence: LicenceInfo(name: "Stability AI Community License", verified: true,
                                 source: "model card (license: other, stabilityai-ai-community); shared/docs/REFERENCE.md section 6"),
            gating: .gated("accept the Stability AI Community License on the hub page; free below USD 1M annual revenue"),
            approxDownloadBytes: 27_600_000_000,
            components: [
                WeightComponent(name: "transformer (MMDiT)", parameters: 8_100_000_000, gpuDType: .bf16),
                WeightComponent(name: "text_encoder_3 (T5-XXL encoder)", parameters: 4_760_000_000, gpuDType: .bf16),
                WeightComponent(name: "text_encoder_2 (OpenCLIP bigG)", parameters: 695_000_000, gpuDType: .bf16),
                WeightComponent(name: "text_encoder (CLIP-L)", parameters: 123_000_000, gpuDType: .bf16),
                WeightComponent(name: "vae", parameters: 84_000_000, gpuDType: .bf16),
            ],
            inDefaultPipeline: false,
            note: "subfolder file names not listed from the hub; if a folder also holds fp16 variants the globs fetch both"),
    ]

    public static var names: [String] { models.map(\.name) }

    public static func models(for pipeline: PipelineName) -> [ModelSpec] {
        switch pipeline {
        case .default: return models.filter(\.inDefaultPipeline)
        case .all: return models
        }
    }

    /// The registry entry of `id` (every id has one; `testEveryModelIDHasAnEntry` holds it to that).
    public static func model(_ id: ModelID) -> ModelSpec? { model(named: id.rawValue) }

    /// Looks a model up by its short name or its repository id (case-insensitive).
    public static func model(named name: String) -> ModelSpec? {
        let key = name.lowercased()
        return models.first { $0.name == key || $0.repo.lowercased() == key }
    }
}
