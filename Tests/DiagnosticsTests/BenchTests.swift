import Foundation
import Imaging
import PLY
import TorchShim
import XCTest
@testable import Pipeline
@testable import Diagnostics

/// The package root: the folder above this file that holds assets/smoke.
func benchPackageRoot(file: String = #filePath) throws -> URL {
    var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
    for _ in 0..<6 {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("assets/bench/prompts.txt").path) { return dir }
        dir.deleteLastPathComponent()
    }
    throw MissingFixture("assets/bench not found above \(file)")
}

final class BenchTests: XCTestCase {
    // MARK: - End to end on the smoke pipeline

    /// The smoke pipeline over 2 text prompts and 1 image, written as JSON, Markdown and PNG. To keep the test fast on a
    /// CPU (a smoke job takes seconds in a debug build), TRELLIS runs 1/1 steps, only the "fast" configurations run
    /// (the others are reported as skipped) and there is no warm-up (the warm-up is tested with fake stages).
    func testSmokePipelineBenchEndToEnd() throws {
        let root = try benchPackageRoot()
        let assembled = try PipelineAssembly.buildSmoke(root.appendingPathComponent("assets/smoke"), device: .cpu)
        let prompts = try BenchPromptSet.loadDefault(directory: root.appendingPathComponent("assets/bench"))
        XCTAssertGreaterThanOrEqual(prompts.texts.count, 25, "the shipped set has ~30 text prompts")
        XCTAssertEqual(prompts.images.count, 5, "the shipped set has 5 images")
        XCTAssertTrue(prompts.images.allSatisfy { $0.image.channels == 4 && $0.image.hasTransparency })
        let set = prompts.prefix(texts: 2, images: 1)

        let tiny = [BenchCatalogue.Preset(name: "fast", settings: GaussianSettings(structureSteps: 1, latentSteps: 1,
                                                                                    structureGuidance: 7.5, latentGuidance: 3)),
                    BenchCatalogue.Preset(name: "quality", settings: GaussianSettings(structureSteps: 2, latentSteps: 2,
                                                                                       structureGuidance: 5, latentGuidance: 5))]
        var progress: [String] = []
        let options = BenchOptions(device: .cpu, isSmoke: assembled.isSmoke, warmup: 0, only: ["fast"],
                                   budget: try BudgetPolicy(seconds: 3600), progress: { progress.append($0) })
        let runner = try BenchRunner(pipeline: assembled.pipeline, pipelineName: assembled.name, trellisPresets: tiny,
                                     options: options)
        let result = try runner.run(prompts: set)

        XCTAssertEqual(result.rows.count, 10, "3 front ends x (2 TRELLIS presets + LGM), plus MVDream -> LGM")
        let measured = result.rows.filter { $0.status == .measured }
        XCTAssertEqual(measured.map(\.configuration.id), ["flux.1-schnell + trellis fast", "image prompt + trellis fast"])
        for row in result.rows where row.status != .measured {
            if row.configuration.unavailable == nil {
                XCTAssertEqual(row.status, .skipped, row.configuration.id)
                XCTAssertEqual(row.configuration.preset, "quality")
            } else {
                XCTAssertEqual(row.status, .unavailable, row.configuration.id)
            }
        }
        XCTAssertTrue(result.rows.first { $0.configuration.id == "sd3.5-large + trellis fast" }!.detail!.contains("SD3.5 is not implemented"))
        XCTAssertTrue(result.rows.first { $0.configuration.id == "image prompt + lgm default" }!.detail!.contains("LGM"))
        XCTAssertTrue(result.rows.first { $0.configuration.id == "mvdream + lgm default" }!.detail!.contains("MVDream"))
        XCTAssertNil(result.rows.first { $0.configuration.id == "mvdream + trellis fast" }, "the MVDream route ends in LGM")
        for row in measured {
            let expectedRuns = row.configuration.promptKind == .text ? 2 : 1
            XCTAssertEqual(row.runs, expectedRuns, row.configuration.id)
            XCTAssertEqual(row.failures, 0, "\(row.failureMessages)")
            XCTAssertEqual(row.total?.count, expectedRuns)
            let stageNames = row.stages.map(\.name)
            XCTAssertEqual(stageNames, row.configuration.promptKind == .text
                ? ["text-to-image", "background", "gaussians", "ply"] : ["background", "gaussians", "ply"])
            XCTAssertGreaterThan(row.gaussians!.min, 0)
            XCTAssertGreaterThan(row.plyBytes!.min, 0)
            XCTAssertEqual(row.checksRun, expectedRuns)
            XCTAssertEqual(row.peakGPUMemory, "n/a (cpu)")
            XCTAssertNil(row.peakGPUMemoryBytes)
            XCTAssertEqual(row.score.text, "n/a: random weights")
            // The stages add up to (at most) the wall time of the job.
            XCTAssertLessThanOrEqual(row.stages.reduce(0) { $0 + $1.seconds.min }, row.total!.max + 1e-6)
        }
        XCTAssertEqual(progress.filter { $0.contains(": prompt ") }.count, 3, "one progress line per measured job")
        XCTAssertEqual(result.choices.map(\.promptKind), [.text, .image])
        for choice in result.choices {
            XCTAssertEqual(choice.basis, .timeOnly)
            XCTAssertNotNil(choice.chosen)
            XCTAssertTrue(choice.explanation.contains("needs real weights"), choice.explanation)
        }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let jsonURL = dir.appendingPathComponent("nested/bench.json")
        try BenchReport.writeJSON(result, to: jsonURL)
        let decoded = try JSONDecoder().decode(BenchResult.self, from: Data(contentsOf: jsonURL))
        XCTAssertEqual(decoded.rows, result.rows)
        XCTAssertEqual(decoded.choices, result.choices)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: jsonURL)) as? [String: Any])
        XCTAssertEqual((object["rows"] as? [Any])?.count, 10)
        XCTAssertEqual(object["isSmoke"] as? Bool, true)

        let written = try BenchReport.writeReport(result, directory: dir.appendingPathComponent("report"))
        let markdown = try String(contentsOf: written.markdown, encoding: .utf8)
        XCTAssertTrue(markdown.hasPrefix("# gen3d bench"))
        XCTAssertTrue(markdown.contains("![time per stage](time-per-stage.png)"))
        for row in result.rows { XCTAssertTrue(markdown.contains("| \(row.configuration.id) |"), row.configuration.id) }
        XCTAssertTrue(markdown.contains("n/a: random weights"))
        let chart = try ImageDecoder.decode(Data(contentsOf: written.chart))
        let layout = StageTimeChart.layout(result)
        XCTAssertEqual(chart.width, layout.width)
        XCTAssertEqual(chart.height, layout.height)
        XCTAssertEqual(layout.bars.count, 2)

        let table = BenchReport.table(result)
        let qualityLine = table.split(separator: "\n").first { $0.hasPrefix("image prompt + trellis quality") }
        XCTAssertTrue(qualityLine?.contains("skipped") ?? false, table)
        XCTAssertTrue(table.contains("budget (image prompts):"))
    }

    // MARK: - Budget choice on synthetic rows

    func row(_ id: String, kind: BenchPromptKind = .text, p90: Double, score: Double? = nil,
             basis: ScoreSummary.Basis = .scored, status: BenchRowStatus = .measured, detail: String? = nil,
             failures: Int = 0) -> BenchRow {
        let configuration = BenchConfiguration(id: id, imageGenerator: kind == .text ? "flux.1-schnell" : "none",
                                               gaussianGenerator: "trellis", preset: "fast", steps: "12/12",
                                               promptKind: kind, stageNames: ["t"])
        guard status == .measured else { return BenchRow(configuration: configuration, status: status, detail: detail) }
        let totals = [p90 * 0.8, p90, p90]  // p90 of these is exactly p90
        return BenchRow(configuration: configuration, status: .measured, runs: 3 + failures, failures: failures,
                        stages: [StageSummary(name: "gaussians", seconds: SampleSummary(totals)!)],
                        total: SampleSummary(totals), peakGPUMemory: "n/a (cpu)", checksPassed: 3, checksRun: 3,
                        score: ScoreSummary(basis: basis, scores: score.map { SampleSummary([$0, $0, $0])! }))
    }

    func testBudgetPicksTheBestScoreThatFits() throws {
        let policy = try BudgetPolicy(seconds: 30, margin: 0.2)
        XCTAssertEqual(policy.limit, 24, accuracy: 1e-12)
        let rows = [row("fast", p90: 10, score: 0.70), row("medium", p90: 20, score: 0.80), row("slow", p90: 28, score: 0.95),
                    row("img", kind: .image, p90: 5, score: 0.5)]
        let choices = BudgetChooser.choose(rows: rows, policy: policy)
        XCTAssertEqual(choices.count, 2)
        let text = choices[0]
        XCTAssertEqual(text.promptKind, .text)
        XCTAssertEqual(text.chosen, "medium")
        XCTAssertEqual(text.basis, .predictedScore)
        XCTAssertEqual(text.rejected["slow"], "p90 28.00 s > 24.00 s")
        XCTAssertEqual(text.rejected["fast"], "fits, lower predicted score 0.700")
        XCTAssertTrue(text.explanation.contains("20% margin"), text.explanation)
        XCTAssertEqual(choices[1].chosen, "img")

        // A wider margin leaves only the fast one.
        let tight = BudgetChooser.choose(rows: rows, policy: try BudgetPolicy(seconds: 30, margin: 0.5))
        XCTAssertEqual(tight[0].chosen, "fast")
        // A tie in score goes to the faster configuration.
        let tie = BudgetChooser.choose(rows: [row("a", p90: 12, score: 0.8), row("b", p90: 8, score: 0.8)], policy: policy)
        XCTAssertEqual(tie[0].chosen, "b")
        XCTAssertEqual(tie[0].rejected["a"], "fits, same predicted score, slower (p90 12.00 s)")
    }

    func testBudgetFallsBackToTimeWithoutScores() throws {
        let policy = try BudgetPolicy(seconds: 30)
        let random = BudgetChooser.choose(rows: [row("quality", p90: 20, basis: .randomWeights),
                                                 row("fast", p90: 9, basis: .randomWeights),
                                                 row("too slow", p90: 40, basis: .randomWeights)], policy: policy)
        XCTAssertEqual(random[0].chosen, "fast")
        XCTAssertEqual(random[0].basis, .timeOnly)
        XCTAssertTrue(random[0].explanation.contains("random weights"))
        XCTAssertTrue(random[0].explanation.contains("the quality part of the choice needs real weights"))
        XCTAssertEqual(random[0].rejected["quality"], "fits, slower (p90 20.00 s)")

        let noScorer = BudgetChooser.choose(rows: [row("a", p90: 5, basis: .noScorer)], policy: policy)
        XCTAssertEqual(noScorer[0].basis, .timeOnly)
        XCTAssertTrue(noScorer[0].explanation.contains("no validator scorer"))

        // One unscored row among scored ones: scores cannot be compared, time decides.
        let mixed = BudgetChooser.choose(rows: [row("scored", p90: 20, score: 0.9), row("unscored", p90: 10, basis: .noScorer)],
                                         policy: policy)
        XCTAssertEqual(mixed[0].chosen, "unscored")
        XCTAssertEqual(mixed[0].basis, .timeOnly)
    }

    func testBudgetReportsCapFailuresAndNoFit() throws {
        let policy = try BudgetPolicy(seconds: 30)
        let rows = [row("big", p90: 0, status: .doesNotFit, detail: "out of memory under the 24.0 GiB cap: CUDA OOM"),
                    row("small", p90: 12, score: 0.6), row("flaky", p90: 5, score: 0.9, failures: 1),
                    row("missing", p90: 0, status: .unavailable, detail: "SD3.5 is not implemented")]
        let choice = BudgetChooser.choose(rows: rows, policy: policy)[0]
        XCTAssertEqual(choice.chosen, "small")
        XCTAssertEqual(choice.rejected["big"], "does not fit in memory: out of memory under the 24.0 GiB cap: CUDA OOM")
        XCTAssertEqual(choice.rejected["flaky"], "1 of 4 jobs failed")
        XCTAssertTrue(choice.rejected["missing"]!.hasPrefix("unavailable"))

        let none = BudgetChooser.choose(rows: [rows[0], row("slow", p90: 50, score: 0.9)], policy: policy)[0]
        XCTAssertNil(none.chosen)
        XCTAssertEqual(none.basis, .none)
        XCTAssertTrue(none.explanation.contains("no text-prompt configuration fits"))

        XCTAssertThrowsError(try BudgetPolicy(seconds: 0))
        XCTAssertThrowsError(try BudgetPolicy(seconds: 30, margin: 1))
        XCTAssertThrowsError(try BudgetPolicy(seconds: .nan))
    }

    // MARK: - Runner with fake stages

    final class FakeGaussians: GaussianStage {
        let name: String
        /// Structure step counts that run out of memory.
        var outOfMemoryAt: Set<Int> = []
        var failAt: Set<Int> = []
        var calls = 0
        init(name: String) { self.name = name }
        func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
            calls += 1
            if outOfMemoryAt.contains(settings.structureSteps) { throw TorchError("[oom] CUDA out of memory. Tried to allocate 2 GiB") }
            if failAt.contains(settings.structureSteps) { throw PipelineError.badInput("synthetic failure") }
            let n = 8000
            var positions = [Float](repeating: 0, count: 3 * n)
            for i in 0..<(3 * n) { positions[i] = Float(i % 97) / 97 }
            return GaussianSplat(positions: positions, shDC: Array(repeating: 0.1, count: 3 * n),
                                 opacities: Array(repeating: 2, count: n), scales: Array(repeating: -4, count: 3 * n),
                                 rotations: (0..<(4 * n)).map { Float($0 % 4) * 0.5 })
        }
    }

    func rgbaImage() throws -> BenchImage {
        BenchImage(name: "dot.png", image: try Image(width: 2, height: 2, channels: 4,
                                                     pixels: [255, 0, 0, 255, 0, 0, 0, 0, 0, 255, 0, 255, 0, 0, 0, 0]))
    }

    func testRunnerMarksOutOfMemoryAsDoesNotFitAndKeepsGoing() throws {
        let trellis = FakeGaussians(name: "trellis")
        trellis.outOfMemoryAt = [25]
        let pipeline = GenerationPipeline(textToImage: nil, backgroundRemoval: nil, gaussians: trellis, validator: nil)
        let options = BenchOptions(device: .cpu, isSmoke: false, warmup: 1, budget: try BudgetPolicy(seconds: 30),
                                   memoryCapGiB: 24)
        let result = try BenchRunner(pipeline: pipeline, pipelineName: "fake", options: options)
            .run(prompts: BenchPromptSet(texts: ["a chair"], images: [try rgbaImage(), try rgbaImage()]))
        let byID = Dictionary(uniqueKeysWithValues: result.rows.map { ($0.configuration.id, $0) })
        let quality = try XCTUnwrap(byID["image prompt + trellis quality"])
        XCTAssertEqual(quality.status, .doesNotFit)
        XCTAssertTrue(quality.detail!.contains("under the 24.0 GiB cap: warm-up"), quality.detail!)
        // fast: 1 warm-up + 2 measured jobs; quality: its warm-up ran out of memory and nothing else ran.
        XCTAssertEqual(trellis.calls, 4)
        let fast = try XCTUnwrap(byID["image prompt + trellis fast"])
        XCTAssertEqual(fast.status, .measured)
        XCTAssertEqual(fast.runs, 2)
        XCTAssertEqual(fast.checksPassed, 2, "\(fast.checkFailures)")
        XCTAssertEqual(fast.gaussians?.median, 8000)
        XCTAssertEqual(fast.score.text, "n/a: no scorer")
        // No FLUX loaded: the text rows say how to get it.
        XCTAssertEqual(byID["flux.1-schnell + trellis fast"]?.status, .unavailable)
        XCTAssertTrue(byID["flux.1-schnell + trellis fast"]!.detail!.contains("FLUX.1-schnell"))
        let image = result.choices.first { $0.promptKind == .image }!
        XCTAssertEqual(image.chosen, "image prompt + trellis fast")
        XCTAssertTrue(image.rejected["image prompt + trellis quality"]!.hasPrefix("does not fit in memory"))
        XCTAssertTrue(BenchReport.table(result).contains("does-not-fit"))
        XCTAssertTrue(BenchReport.markdown(result, chartFile: nil).contains("does-not-fit: out of memory under the 24.0 GiB cap"))
    }

    func testRunnerRecordsFailuresSkipsAndLGMWhenPresent() throws {
        let trellis = FakeGaussians(name: "trellis")
        trellis.failAt = [12]
        let lgm = FakeGaussians(name: "lgm")
        let pipeline = GenerationPipeline(textToImage: nil, backgroundRemoval: nil, gaussians: trellis, validator: nil)
        let options = BenchOptions(device: .cpu, isSmoke: false, warmup: 0, only: ["fast", "LGM"],
                                   budget: try BudgetPolicy(seconds: 30))
        let result = try BenchRunner(pipeline: pipeline, pipelineName: "fake", gaussianStages: [trellis, lgm], options: options)
            .run(prompts: BenchPromptSet(texts: [], images: [try rgbaImage()]))
        let byID = Dictionary(uniqueKeysWithValues: result.rows.map { ($0.configuration.id, $0) })
        XCTAssertEqual(byID["image prompt + trellis fast"]?.status, .failed)
        XCTAssertTrue(byID["image prompt + trellis fast"]!.detail!.contains("synthetic failure"))
        XCTAssertEqual(byID["image prompt + trellis quality"]?.status, .skipped)
        XCTAssertEqual(byID["image prompt + trellis quality"]?.detail, "not selected by --only")
        XCTAssertEqual(byID["image prompt + lgm default"]?.status, .measured, "an 'lgm' stage makes LGM available")
        XCTAssertEqual(byID["image prompt + lgm default"]?.configuration.stageNames, ["lgm"])
        XCTAssertEqual(byID["flux.1-schnell + lgm default"]?.status, .unavailable)
        XCTAssertThrowsError(try BenchRunner(pipeline: pipeline, pipelineName: "fake", options: options)
            .run(prompts: BenchPromptSet(texts: [], images: []))) { XCTAssertTrue("\($0)".contains("no prompts")) }
    }

    // MARK: - Prompt files, statistics, chart

    func testPromptFileParsingAndErrors() throws {
        let root = try benchPackageRoot()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prompts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ball = root.appendingPathComponent("assets/bench/images/red-ball.png").path
        let file = dir.appendingPathComponent("p.txt")
        try "# comment\n\n  a lamp  \nimage: \(ball)\na vase\n".write(to: file, atomically: true, encoding: .utf8)
        let set = try BenchPromptSet.load(file: file)
        XCTAssertEqual(set.texts, ["a lamp", "a vase"])
        XCTAssertEqual(set.images.map(\.name), ["red-ball.png"])

        try "image: missing.png\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BenchPromptSet.load(file: file)) { XCTAssertTrue("\($0)".contains("missing.png"), "\($0)") }
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("bad.png"))
        try "image: bad.png\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BenchPromptSet.load(file: file)) { XCTAssertTrue("\($0)".contains("bad.png"), "\($0)") }
        try "# only comments\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BenchPromptSet.load(file: file)) { XCTAssertTrue("\($0)".contains("no prompts"), "\($0)") }
        XCTAssertThrowsError(try BenchPromptSet.load(file: dir.appendingPathComponent("absent.txt"))) {
            XCTAssertTrue("\($0)".contains("absent.txt"), "\($0)")
        }
        XCTAssertEqual(BenchPromptSet.findDefaultDirectory(from: [root.appendingPathComponent("Sources/Pipeline")])?.standardizedFileURL.path,
                       root.appendingPathComponent("assets/bench").standardizedFileURL.path)
    }

    func testSampleSummaryPercentiles() throws {
        let s = try XCTUnwrap(SampleSummary([4, 1, 3, 2]))
        XCTAssertEqual(s.median, 2.5, accuracy: 1e-12)
        XCTAssertEqual(s.p90, 3.7, accuracy: 1e-12)
        XCTAssertEqual(s.min, 1)
        XCTAssertEqual(s.max, 4)
        XCTAssertEqual(s.mean, 2.5, accuracy: 1e-12)
        let one = try XCTUnwrap(SampleSummary([7]))
        XCTAssertEqual([one.median, one.p90, one.p99], [7, 7, 7])
        XCTAssertNil(SampleSummary([Double]()))
    }

    func testChartBarsAreProportionalToStageTimes() throws {
        let a = row("config a", p90: 3)
        var b = row("config b", p90: 1.5)
        b.stages = [StageSummary(name: "text-to-image", seconds: SampleSummary([0.5])!),
                    StageSummary(name: "gaussians", seconds: SampleSummary([1.0])!)]
        let result = BenchResult(date: "now", device: "cpu", deviceName: "cpu", pipeline: "synthetic", isSmoke: true,
                                 memoryCapGiB: nil, textPrompts: 3, imagePrompts: 0, warmupRuns: 0, seed: 1, rows: [a, b],
                                 budget: try BudgetPolicy(), choices: [], notes: [])
        let layout = StageTimeChart.layout(result)
        XCTAssertEqual(layout.axisMax, 3)
        XCTAssertEqual(layout.tickStep, 1)
        let image = try ImageDecoder.decode(try PNGEncoder.encode(try StageTimeChart.render(result)))
        XCTAssertEqual(image.width, layout.width)
        XCTAssertEqual(image.channels, 3)
        // config a: one gaussians segment of 3 s (its median); config b: 0.5 s + 1.0 s.
        let pxPerSecond = Double(StageTimeChart.plotWidth) / 3
        XCTAssertEqual(Double(layout.bars[0].segments[0].width), 3 * pxPerSecond, accuracy: 1)
        XCTAssertEqual(layout.bars[1].segments.map(\.stage), ["text-to-image", "gaussians"])
        XCTAssertEqual(Double(layout.bars[1].segments[0].width), 0.5 * pxPerSecond, accuracy: 1)
        XCTAssertEqual(Double(layout.bars[1].segments[1].width), 1.0 * pxPerSecond, accuracy: 1)
        func color(_ x: Int, _ y: Int) -> [UInt8] { Array(try! image.pixel(x: x, y: y)) }
        func rgb(_ c: RGBColor) -> [UInt8] { [c.red, c.green, c.blue] }
        for bar in layout.bars {
            let y = bar.y + StageTimeChart.barHeight / 2
            for segment in bar.segments {
                let expected = rgb(StageTimeChart.knownColors[segment.stage]!)
                XCTAssertEqual(color(segment.x + 3, y), expected, "\(bar.label) \(segment.stage) start")
                XCTAssertEqual(color(segment.x + segment.width - 3, y), expected, "\(bar.label) \(segment.stage) end")
            }
            XCTAssertEqual(color(bar.p90X, y), rgb(StageTimeChart.p90Color))
            let end = bar.segments.last!.x + bar.segments.last!.width
            XCTAssertEqual(color(max(end, bar.p90X) + 4, y), [255, 255, 255], "nothing drawn past the bar")
        }
        // Labels are drawn in the left margin.
        let labelBand = (0..<layout.plotX).flatMap { x in (layout.bars[0].y..<(layout.bars[0].y + StageTimeChart.barHeight)).map { (x, $0) } }
        XCTAssertTrue(labelBand.contains { color($0.0, $0.1) == rgb(StageTimeChart.textColor) })

        XCTAssertNil(layout.budgetX, "a 24 s limit would squash 3 s bars: no budget line")
        var tight = result
        tight.budget = try BudgetPolicy(seconds: 5, margin: 0.2)
        let tightLayout = StageTimeChart.layout(tight)
        XCTAssertEqual(tightLayout.axisMax, 4, "the axis stretches to the 4 s limit")
        let budgetX = try XCTUnwrap(tightLayout.budgetX)
        XCTAssertEqual(budgetX, tightLayout.plotX + StageTimeChart.plotWidth)
        let tightImage = try StageTimeChart.render(tight)
        let column = (tightLayout.bars[0].y..<tightLayout.axisY).map { Array(try! tightImage.pixel(x: budgetX, y: $0)) }
        XCTAssertTrue(column.contains(rgb(StageTimeChart.budgetColor)))
        XCTAssertTrue(tightLayout.legend.contains { $0.name == "budget - margin (4.0 s)" })
        XCTAssertEqual(tightLayout.legend.map(\.name).prefix(2), ["text-to-image", "gaussians"], "legend in pipeline order")

        let empty = BenchResult(date: "now", device: "cpu", deviceName: "cpu", pipeline: "synthetic", isSmoke: true,
                                memoryCapGiB: nil, textPrompts: 0, imagePrompts: 0, warmupRuns: 0, seed: 1, rows: [],
                                budget: try BudgetPolicy(), choices: [], notes: [])
        XCTAssertGreaterThan(try StageTimeChart.render(empty).width, 0)
    }

    func testBitmapFontCoversChartText() {
        for text in ["flux.1-schnell + trellis fast (12/12)", "Time per stage (median, seconds)", "p90 total", "0.25"] {
            for character in text where character != " " {
                XCTAssertNotEqual(BitmapFont.glyph(character), BitmapFont.glyph("?"), "missing glyph '\(character)'")
            }
        }
        XCTAssertEqual(BitmapFont.glyph("a"), BitmapFont.glyph("A"))
        XCTAssertEqual(BitmapFont.glyph("~"), BitmapFont.glyph("?"))
        XCTAssertEqual(BitmapFont.width(of: "ab", scale: 2), 22)
    }

    /// With LGM and MVDream loaded, the MVDream route is a configuration of its own and runs through the direct stage.
    func testMVDreamRouteIsAConfiguration() throws {
        final class Direct: TextToGaussianStage {
            let name = "fake mvdream + lgm"
            var calls = 0
            func generate(text: String, seed: UInt64, output: SplatOutputOptions, timings: inout StageTimings) throws
                -> (splat: GaussianSplat, views: Image) {
                calls += 1
                timings.append("multiview", seconds: 0.001)
                let n = 8
                return (GaussianSplat(positions: Array(repeating: 0.1, count: 3 * n), shDC: Array(repeating: 0, count: 3 * n),
                                      opacities: Array(repeating: 2, count: n), scales: Array(repeating: -4, count: 3 * n),
                                      rotations: Array(repeating: 0.5, count: 4 * n)),
                        try Image(width: 2, height: 2, filledWith: [1, 2, 3]))
            }
        }
        final class LGMStage: GaussianStage {
            let name = "random-lgm"  // timing mode's name: the catalogue matches generators by the name they contain
            func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
                XCTFail("the MVDream configuration must not run the image stage")
                return GaussianSplat(positions: [], shDC: [], opacities: [], scales: [], rotations: [])
            }
        }
        let direct = Direct()
        let pipeline = try GenerationPipeline(textToImage: nil, backgroundRemoval: nil, generators: [.lgm: LGMStage()],
                                              defaultGenerator: .lgm, directText: [.lgm: direct], validator: nil)
        let options = BenchOptions(device: .cpu, isSmoke: true, warmup: 0, only: ["mvdream"],
                                   budget: try BudgetPolicy(seconds: 3600))
        let runner = try BenchRunner(pipeline: pipeline, pipelineName: "fake", options: options)
        let row = try XCTUnwrap(runner.planned.first { $0.configuration.id == "mvdream + lgm default" })
        XCTAssertNil(row.configuration.unavailable)
        XCTAssertEqual(row.configuration.stageNames, ["fake mvdream + lgm"])
        let result = try runner.run(prompts: BenchPromptSet(texts: ["a cup", "a lamp"], images: []))
        let measured = result.rows.filter { $0.status == .measured }
        XCTAssertEqual(measured.map(\.configuration.id), ["mvdream + lgm default"])
        XCTAssertEqual(direct.calls, 2)
        XCTAssertEqual(try XCTUnwrap(measured.first).stages.map(\.name), ["multiview", "ply"])
    }
}

/// Thrown (a test failure, never a skip) when the shipped bench assets are not found.
struct MissingFixture: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
