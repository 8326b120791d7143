import ArgumentParser
import Diagnostics
import Foundation
import Models
import TorchShim

struct LGMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lgm",
        abstract: "ImageDream + LGM 'big': CLIP text/ViT-H, VAE, MV UNet step (CFG batch), 30 DDIM steps, LGM, PLY (reference: --dtype float16).")
    @OptionGroup var options: DeviceOptions
    @Option(help: "Folder with manifest_lgm_big.json and manifest_mv_unet_imagedream.json (fixtures/lgm).") var manifests: String
    @Option(help: "DDIM steps.") var steps = 30
    @Option(help: "Timed repetitions per stage.") var repeats = 5

    func run() throws {
        let (device, dtype) = try options.resolved()
        guard steps >= 1, repeats >= 1 else { throw ValidationError("steps and repeats must be positive") }
        var sizes = LGMBenchmark.Sizes.imageDream
        sizes.steps = steps
        sizes.repeats = repeats
        printBenchHeader("ImageDream + LGM big, random weights at real size", device: device, dtype: dtype)
        for row in try LGMBenchmark.run(device: device, dtype: dtype, manifestDir: URL(fileURLWithPath: manifests), sizes: sizes) {
            print(row)
        }
    }
}
