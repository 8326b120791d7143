import Tokenizers
import Foundation

/// Times the tokenizers on prompt-sized input (for a CLI `bench-tokenizers` command; not a unit test).
public enum TokenizerBenchmark {
    public struct Result: Sendable {
        public var name: String
        /// Median seconds per encode.
        public var medianSeconds: Double
        /// Length of the padded output.
        public var tokens: Int
    }

    /// A prompt of about 70 CLIP tokens with a few distinct words, punctuation and digits.
    public static let prompt = "a highly detailed photorealistic 3d model of an ancient stone fountain in the middle of "
        + "a busy medieval market square, surrounded by wooden stalls selling fruit, vegetables, bread and cheese, "
        + "with pigeons on the rim and moss growing in the cracks, warm afternoon light, 4k"

    /// Median time of `repetitions` encodes of `prompt` (and of 8 copies of it for T5, ~256+ tokens) with
    /// open_clip's tokenizer, optionally transformers' CLIP (`clipFolder`) and T5 (`t5TokenizerJSON`,
    /// `t5SpieceModel`). The first encode of each (filling caches) is not timed.
    public static func run(clipFolder: URL? = nil, t5TokenizerJSON: URL? = nil, t5SpieceModel: URL? = nil,
                           repetitions: Int = 200) throws -> [Result] {
        var results: [Result] = []
        let openCLIP = try CLIPTokenizer.openCLIP()
        results.append(try time("open_clip SimpleTokenizer, 77", repetitions) { try openCLIP.encode($0, contextLength: 77) })
        results.append(try time("open_clip SimpleTokenizer, uncached words", repetitions, uniqueWords: true) {
            try openCLIP.encode($0, contextLength: 77)
        })
        if let clipFolder {
            let clip = try CLIPTokenizer(folder: clipFolder)
            results.append(try time("transformers CLIPTokenizer, 77", repetitions) { try clip.encode($0, contextLength: 77) })
        }
        let longPrompt = Array(repeating: prompt, count: 8).joined(separator: " ")
        var t5Tokenizers: [(String, T5Tokenizer)] = []
        if let t5TokenizerJSON { t5Tokenizers.append(("tokenizer.json", try T5Tokenizer(tokenizerJSON: t5TokenizerJSON))) }
        if let t5SpieceModel { t5Tokenizers.append(("spiece.model", try T5Tokenizer(spieceModel: t5SpieceModel))) }
        for (source, t5) in t5Tokenizers {
            results.append(try time("T5 \(source), prompt, 256", repetitions) { try t5.encode($0, maxLength: 256) })
            results.append(try time("T5 \(source), 8 x prompt, 256", repetitions) { _ in
                try t5.encode(longPrompt, maxLength: 256)
            })
        }
        return results
    }

    /// Times `body(text)`; with `uniqueWords` each repetition gets words no earlier one had (no cache hits).
    private static func time(_ name: String, _ repetitions: Int, uniqueWords: Bool = false,
                             _ body: (String) throws -> [Int32]) rethrows -> Result {
        var tokens = try body(prompt).count
        var times: [Double] = []
        for repetition in 0..<max(1, repetitions) {
            let text = uniqueWords ? uniquePrompt(repetition) : prompt
            let start = DispatchTime.now().uptimeNanoseconds
            let ids = try body(text)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            tokens = ids.count
        }
        times.sort()
        return Result(name: name, medianSeconds: times[times.count / 2], tokens: tokens)
    }

    /// `prompt` with every word given a suffix unique to `seed`, so the BPE cache never has it.
    private static func uniquePrompt(_ seed: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var suffix = ""
        var n = seed + 1
        while n > 0 {
            suffix.append(letters[n % 26])
            n /= 26
        }
        return prompt.split(separator: " ").map { $0 + suffix }.joined(separator: " ")
    }
}
