// swift-tools-version: 6.1
import PackageDescription
import Foundation

// libtorchshim.so (the C++ shim over libtorch) is built by scripts/setup.sh into .deps/lib of this
// package. The binaries find it next to themselves ($ORIGIN, how it ships) or in .deps/lib (dev).
let packageDir = Context.packageDirectory
let shimLibDir = "\(packageDir)/.deps/lib"
let shimLinker: [LinkerSetting] = [
    .unsafeFlags(["-L\(shimLibDir)", "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN",
                  "-Xlinker", "-rpath", "-Xlinker", shimLibDir]),
]
let strict: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "Splat3D",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gen3d", targets: ["GenServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C ABI of the libtorch shim (header only; the C++ lives in Sources/CTorchShim/cxx and is
        // compiled by scripts/build-shim.sh against the machine's libtorch).
        .systemLibrary(name: "CTorchShim", path: "Sources/CTorchShim"),
        // Swift Tensor API, dtype/device, safetensors.
        .target(name: "TorchShim", dependencies: ["CTorchShim"], swiftSettings: strict,
                linkerSettings: shimLinker),
        // Neural-network building blocks over TorchShim (Linear, norms, conv, attention, weight loading).
        .target(name: "NN", dependencies: ["TorchShim"], swiftSettings: strict),
        // Tokenizers (CLIP BPE, T5 sentencepiece unigram): pure Swift.
        .target(name: "Tokenizers", resources: [.copy("Resources/bpe_simple_vocab_16e6.txt.gz")],
                swiftSettings: strict),
        // One file per architecture: DINOv2, TRELLIS, FLUX (+T5, CLIP text, VAE), BiRefNet, LGM, open_clip.
        .target(name: "Models", dependencies: ["NN", "TorchShim", "Tokenizers", "PLY"], swiftSettings: strict),
        // Gaussian splat type, PLY read/write.
        .target(name: "PLY", swiftSettings: strict),
        // PNG (libpng) / JPEG (libjpeg-turbo) codecs in C with setjmp-safe error handling.
        // Linked statically so the binary runs unchanged on other distributions (Ubuntu ships libjpeg.so.8,
        // Debian libjpeg.so.62).
        .target(name: "CImageCodecs", linkerSettings: [
            .unsafeFlags(["-Xlinker", "-l:libpng16.a", "-Xlinker", "-l:libjpeg.a", "-Xlinker", "-l:libz.a"]),
        ]),
        // Decoded images, resize, conversion to/from tensors lives in Pipeline/Models.
        .target(name: "Imaging", dependencies: ["CImageCodecs"], swiftSettings: strict),
        // libcurl.
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        // Model registry, Hugging Face hub downloads, cache reuse, memory plan.
        .target(name: "ModelStore", dependencies: ["CCurl"], swiftSettings: strict),
        // HTTP/1.1 server on sockets + Dispatch (no NIO), request parsing, bounded job queue.
        .target(name: "HTTPServer", swiftSettings: strict),
        // Network fuzz cases and runner (gen3d fuzz-http and the HTTPServer test suite); no runtime target imports it.
        .target(name: "HTTPFuzz", dependencies: ["HTTPServer"], swiftSettings: strict),
        // The Gaussian rasterizer (CPU and CUDA), render cameras and settings, contact sheets, render comparisons.
        .target(name: "Splatting", dependencies: ["TorchShim", "PLY", "Imaging"], swiftSettings: strict),
        // The retired CLIP/IQA validator's emulation: its data checks, scorers, aggregation and render job.
        .target(name: "CLIPValidate", dependencies: ["TorchShim", "NN", "Models", "PLY", "Imaging", "Tokenizers",
                                                     "Splatting"],
                swiftSettings: strict),
        // Oracle fixture cases and the runner behind `gen3d selftest` and the parity tests: diagnostics, not runtime.
        .target(name: "Fixtures", dependencies: ["TorchShim", "NN", "Models", "PLY", "Imaging", "CLIPValidate", "Splatting",
                                                 "Tokenizers", "Pipeline"], swiftSettings: strict),
        // Stages, configuration, pipeline assembly.
        .target(name: "Pipeline", dependencies: ["TorchShim", "NN", "Models", "PLY", "Imaging", "CLIPValidate", "Splatting",
                                                 "ModelStore", "Tokenizers"], swiftSettings: strict),
        // The generation API over HTTP: requests mapped to pipeline jobs, outcomes to answers.
        .target(name: "Service", dependencies: ["Pipeline", "HTTPServer", "PLY", "Imaging", "TorchShim"],
                swiftSettings: strict),
        // Benchmarks, random-weight timing pipelines, the readiness client and bench reports: diagnostics that
        // runtime targets never import.
        .target(name: "Diagnostics", dependencies: ["TorchShim", "NN", "Models", "PLY", "Imaging", "CLIPValidate", "Splatting",
                                                    "ModelStore", "Tokenizers", "HTTPServer", "Pipeline"],
                swiftSettings: strict),
        // Diagnostics, apart from runtime code: the file-parser mutation engine and its targets (runtime targets never
        // import it; the tests and `gen3d fuzz-files` do).
        .target(name: "FuzzSupport", dependencies: ["TorchShim", "NN", "PLY", "Imaging", "Models", "Tokenizers", "Pipeline",
                                                    "Fixtures"],
                swiftSettings: strict),
        .executableTarget(name: "GenServer", dependencies: [
            "Pipeline", "Service", "Fixtures", "Diagnostics", "FuzzSupport", "HTTPFuzz", "HTTPServer", "ModelStore", "TorchShim",
            "PLY", "Imaging", "CLIPValidate", "Splatting",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: strict, linkerSettings: shimLinker),

        .testTarget(name: "TorchShimTests", dependencies: ["TorchShim"], exclude: ["Resources"], swiftSettings: strict),
        .testTarget(name: "PLYTests", dependencies: ["PLY", "Diagnostics"], swiftSettings: strict),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Resources")],
                    swiftSettings: strict),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "Service", "Pipeline", "HTTPFuzz"], swiftSettings: strict),
        .testTarget(name: "ModelStoreTests", dependencies: ["ModelStore"], swiftSettings: strict),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], resources: [.copy("Resources")],
                    swiftSettings: strict),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "NN", "TorchShim", "Fixtures", "Pipeline", "Diagnostics"], exclude: ["Resources"],
                    swiftSettings: strict),
        .testTarget(name: "CLIPValidateTests", dependencies: ["CLIPValidate", "Splatting", "PLY", "TorchShim", "Diagnostics"], swiftSettings: strict),
        .testTarget(name: "FuzzSupportTests", dependencies: ["FuzzSupport", "TorchShim", "NN", "Models", "PLY", "Imaging",
                                                            "Pipeline", "Fixtures", "ModelStore"], swiftSettings: strict),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "HTTPServer", "Diagnostics"], swiftSettings: strict),
        .testTarget(name: "ServiceTests", dependencies: ["Service", "Pipeline", "HTTPServer", "PLY", "Imaging"],
                    swiftSettings: strict),
        .testTarget(name: "DiagnosticsTests", dependencies: ["Diagnostics", "Pipeline", "HTTPServer", "Service"], swiftSettings: strict),
    ]
)
