import Pipeline
import Foundation
import Imaging

/// Renders a `BenchResult`: a terminal table, JSON, and a Markdown report with a PNG chart of time per stage.
public enum BenchReport {
    public static let chartFileName = "time-per-stage.png"
    public static let reportFileName = "report.md"

    // MARK: - Terminal

    /// One line per configuration, then the budget choices.
    public static func table(_ result: BenchResult) -> String {
        var lines: [String] = []
        lines.append("gen3d bench: \(result.pipeline) on \(result.deviceName) (\(result.device))"
            + (result.memoryCapGiB.map { String(format: ", allocator capped at %.1f GiB", $0) } ?? ""))
        lines.append("\(result.textPrompts) text + \(result.imagePrompts) image prompts, \(result.warmupRuns) warm-up run(s), "
            + "seed \(result.seed)")
        let header = ["configuration", "status", "runs", "total p50", "total p90", "gaussians", "ply", "peak GPU", "checks",
                      "score"]
        var cells: [[String]] = [header]
        for row in result.rows {
            let ran = row.status != .unavailable && row.status != .skipped
            cells.append([
                row.configuration.id,
                row.status == .measured ? "ok" : row.status.rawValue,
                row.runs == 0 ? "-" : (row.failures > 0 ? "\(row.runs) (\(row.failures) failed)" : "\(row.runs)"),
                row.total.map { seconds($0.median) } ?? "-",
                row.total.map { seconds($0.p90) } ?? "-",
                row.gaussians.map { String(Int($0.median)) } ?? "-",
                row.plyBytes.map { bytes($0.median) } ?? "-",
                ran ? row.peakGPUMemory : "-",
                row.checksRun == 0 ? "-" : "\(row.checksPassed)/\(row.checksRun)",
                row.hasTimings ? row.score.text : "-",
            ])
        }
        lines.append(contentsOf: align(cells))
        let timed = result.rows.filter { !$0.stages.isEmpty }
        if !timed.isEmpty {
            lines.append("stages, median/p90 seconds:")
            for row in timed {
                lines.append("  \(row.configuration.id): " + row.stages.map {
                    "\($0.name) \(String(format: "%.2f/%.2f", $0.seconds.median, $0.seconds.p90))"
                }.joined(separator: ", "))
            }
        }
        let explained = result.rows.filter { $0.status != .measured || !$0.checkFailures.isEmpty }
        if !explained.isEmpty {
            lines.append("why:")
            for row in explained {
                var reasons: [String] = []
                if row.status != .measured { reasons.append("\(row.status.rawValue): \(row.detail ?? "-")") }
                for (kind, count) in row.checkFailures.sorted(by: { $0.key < $1.key }) {
                    reasons.append("\(count)/\(row.checksRun) splats fail the validator's check: \(kind)")
                }
                lines.append("  \(row.configuration.id): " + reasons.joined(separator: "; "))
            }
        }
        lines.append("")
        for choice in result.choices {
            lines.append("budget (\(choice.promptKind.rawValue) prompts): " + choice.explanation)
        }
        for note in result.notes { lines.append("note: " + note) }
        return lines.joined(separator: "\n")
    }

    // MARK: - JSON

    public static func json(_ result: BenchResult) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(result)
    }

    public static func writeJSON(_ result: BenchResult, to url: URL) throws {
        try write(try json(result), to: url)
    }

    // MARK: - Markdown + chart

    /// Writes `report.md` and `time-per-stage.png` into `directory` (created when missing); returns their URLs.
    @discardableResult
    public static func writeReport(_ result: BenchResult, directory: URL) throws -> (markdown: URL, chart: URL) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw BenchError.output(path: directory.path, message: error.localizedDescription)
        }
        let chart = directory.appendingPathComponent(chartFileName)
        try write(try PNGEncoder.encode(try StageTimeChart.render(result)), to: chart)
        let markdownURL = directory.appendingPathComponent(reportFileName)
        try write(Data(markdown(result, chartFile: chartFileName).utf8), to: markdownURL)
        return (markdownURL, chart)
    }

    public static func markdown(_ result: BenchResult, chartFile: String?) -> String {
        var md: [String] = []
        md.append("# gen3d bench")
        md.append("")
        md.append("- pipeline: \(result.pipeline)")
        if result.isSmoke { md.append("- **smoke pipeline: random weights; the numbers say nothing about real generation**") }
        md.append("- device: \(result.deviceName) (\(result.device))"
            + (result.memoryCapGiB.map { String(format: ", allocator capped at %.1f GiB", $0) } ?? ""))
        md.append("- prompts: \(result.textPrompts) text, \(result.imagePrompts) image; \(result.warmupRuns) warm-up run(s) "
            + "per configuration; seed \(result.seed)")
        md.append("- date: \(result.date)")
        md.append(String(format: "- budget: %.1f s per request, margin %.0f%% (a configuration fits when its p90 job time "
            + "is at most %.1f s)", result.budget.seconds, result.budget.margin * 100, result.budget.limit))
        md.append("")
        md.append("## Choice")
        md.append("")
        for choice in result.choices {
            md.append("- **\(choice.promptKind.rawValue) prompts**: \(choice.explanation)")
        }
        if result.choices.isEmpty { md.append("- nothing to choose from") }
        md.append("")
        md.append("## Configurations")
        md.append("")
        md.append("| configuration | status | runs | total p50 (s) | total p90 (s) | Gaussians (median) | PLY (median) "
            + "| peak GPU | checks passed | predicted score |")
        md.append("|---|---|---|---|---|---|---|---|---|---|")
        for row in result.rows {
            let status = row.status.rawValue + (row.status != .measured ? row.detail.map { ": \(escape($0))" } ?? "" : "")
            md.append("| \(escape(row.configuration.id)) | \(status) | \(row.runs)\(row.failures > 0 ? " (\(row.failures) failed)" : "") "
                + "| \(row.total.map { String(format: "%.3f", $0.median) } ?? "-") "
                + "| \(row.total.map { String(format: "%.3f", $0.p90) } ?? "-") "
                + "| \(row.gaussians.map { String(Int($0.median)) } ?? "-") "
                + "| \(row.plyBytes.map { bytes($0.median) } ?? "-") "
                + "| \(row.status == .unavailable || row.status == .skipped ? "-" : row.peakGPUMemory) "
                + "| \(row.checksRun == 0 ? "-" : "\(row.checksPassed)/\(row.checksRun)") "
                + "| \(row.hasTimings ? row.score.text : "-") |")
        }
        let measured = result.rows.filter(\.hasTimings)
        if !measured.isEmpty {
            md.append("")
            md.append("## Time per stage")
            md.append("")
            if let chartFile { md.append("![time per stage](\(chartFile))"); md.append("") }
            md.append("| configuration | stage | median (s) | p90 (s) |")
            md.append("|---|---|---|---|")
            for row in measured {
                for stage in row.stages {
                    md.append(String(format: "| %@ | %@ | %.3f | %.3f |", escape(row.configuration.id), stage.name,
                                     stage.seconds.median, stage.seconds.p90))
                }
                if let total = row.total {
                    md.append(String(format: "| %@ | **total (wall)** | %.3f | %.3f |", escape(row.configuration.id),
                                     total.median, total.p90))
                }
            }
        }
        let checkRows = result.rows.filter { !$0.checkFailures.isEmpty || !$0.failureMessages.isEmpty }
        if !checkRows.isEmpty {
            md.append("")
            md.append("## Failed checks and errors")
            md.append("")
            for row in checkRows {
                for (kind, count) in row.checkFailures.sorted(by: { $0.key < $1.key }) {
                    md.append("- \(escape(row.configuration.id)): \(count) of \(row.checksRun) splats: \(kind)")
                }
                for message in row.failureMessages { md.append("- \(escape(row.configuration.id)): error: \(escape(message))") }
            }
        }
        if !result.notes.isEmpty {
            md.append("")
            md.append("## Notes")
            md.append("")
            for note in result.notes { md.append("- \(note)") }
        }
        md.append("")
        return md.joined(separator: "\n")
    }

    // MARK: - Helpers

    static func write(_ data: Data, to url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        } catch {
            throw BenchError.output(path: url.path, message: error.localizedDescription)
        }
    }

    static func seconds(_ value: Double) -> String { String(format: "%.2f s", value) }

    static func bytes(_ value: Double) -> String {
        if value >= 1_048_576 { return String(format: "%.1f MiB", value / 1_048_576) }
        if value >= 1024 { return String(format: "%.1f KiB", value / 1024) }
        return "\(Int(value)) B"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// Left-aligned columns separated by two spaces.
    static func align(_ cells: [[String]]) -> [String] {
        guard let columns = cells.first?.count else { return [] }
        let widths = (0..<columns).map { c in cells.map { $0[c].count }.max() ?? 0 }
        return cells.map { row in
            row.enumerated().map { c, text in
                c == columns - 1 ? text : text.padding(toLength: widths[c], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }
}
