#!/usr/bin/env bash
# Release-build timing of the Tokenizers target (TokenizerBenchmark) without the rest of the package: a throwaway
# SwiftPM package in $WORK links this checkout's Sources/Tokenizers and calls TokenizerBenchmark.run.
# Usage: scripts/bench-tokenizers.sh [t5-tokenizer.json] [t5-spiece.model] [clip-folder]
# Defaults: the tiny T5 test model (real nmt_nfkc charsmap, 1.2K pieces) and no transformers CLIP folder.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-/tmp/tokenizers-bench}"
T5_JSON="${1:-$ROOT/Tests/TokenizersTests/Resources/t5_tiny/tokenizer.json}"
T5_SPIECE="${2:-$ROOT/Tests/TokenizersTests/Resources/t5_tiny/spiece.model}"
CLIP_FOLDER="${3:-}"

mkdir -p "$WORK/Sources/Bench"
ln -sfn "$ROOT/Sources/Tokenizers" "$WORK/Sources/Tokenizers"
cat > "$WORK/Package.swift" <<'EOF'
// swift-tools-version: 6.1
import PackageDescription
let package = Package(name: "Splat3D", targets: [
    .target(name: "Tokenizers", resources: [.copy("Resources/bpe_simple_vocab_16e6.txt.gz")],
            swiftSettings: [.swiftLanguageMode(.v5)]),
    .executableTarget(name: "Bench", dependencies: ["Tokenizers"], swiftSettings: [.swiftLanguageMode(.v5)]),
])
EOF
cat > "$WORK/Sources/Bench/main.swift" <<'EOF'
import Foundation
import Tokenizers
let arguments = CommandLine.arguments.dropFirst().map { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
let results = try TokenizerBenchmark.run(clipFolder: arguments[2], t5TokenizerJSON: arguments[0],
                                         t5SpieceModel: arguments[1], repetitions: 500)
for r in results {
    print(r.name.padding(toLength: 44, withPad: " ", startingAt: 0)
          + String(format: "%4d ids  median %7.1f us", r.tokens, r.medianSeconds * 1e6))
}
EOF
swift build -c release --package-path "$WORK" --product Bench 2>&1 | grep -E "error|warning: |Compiling Bench|Build" || true
"$WORK/.build/release/Bench" "$T5_JSON" "$T5_SPIECE" "$CLIP_FOLDER"
