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
        // Rasterizer, validator cameras and checks, scorers, gate.
        .target(name: "CLIPValidate", dependencies: ["TorchShim", "NN", "Models", "PLY", "Imaging", "Tokenizers"],
                swiftSettings: strict),
        // Stages, configuration, fixture runner (selftest), pipeline assembly.
        .target(name: "Pipeline", dependencies: ["TorchShim", "NN", "Models", "PLY", "Imaging", "CLIPValidate",
                                                 "ModelStore", "Tokenizers", "HTTPServer"], swiftSettings: strict),
        .executableTarget(name: "GenServer", dependencies: [
            "Pipeline", "HTTPServer", "HTTPFuzz", "ModelStore", "TorchShim", "PLY", "Imaging", "CLIPValidate",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: strict, linkerSettings: shimLinker),

        .testTarget(name: "TorchShimTests", dependencies: ["TorchShim"], exclude: ["Resources"], swiftSettings: strict),
        .testTarget(name: "PLYTests", dependencies: ["PLY"], swiftSettings: strict),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Resources")],
                    swiftSettings: strict),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "HTTPFuzz"], swiftSettings: strict),
        .testTarget(name: "ModelStoreTests", dependencies: ["ModelStore"], swiftSettings: strict),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], resources: [.copy("Resources")],
                    swiftSettings: strict),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "NN", "TorchShim", "Pipeline"], exclude: ["Resources"],
                    swiftSettings: strict),
        .testTarget(name: "CLIPValidateTests", dependencies: ["CLIPValidate", "PLY", "TorchShim"], swiftSettings: strict),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "HTTPServer"], swiftSettings: strict),
    ]
)
