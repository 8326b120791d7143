import Pipeline
import Foundation
import Imaging

/// Stacked horizontal bars of the median time of each stage, one bar per measured configuration, with a tick at the
/// configuration's p90 total, a seconds axis and a legend.
public enum StageTimeChart {
    public static let textScale = 2
    public static let barHeight = 24
    public static let barGap = 14
    public static let plotWidth = 640
    public static let margin = 16

    public static let textColor = RGBColor(red: 30, green: 30, blue: 30)
    public static let axisColor = RGBColor(red: 110, green: 110, blue: 110)
    public static let gridColor = RGBColor(red: 228, green: 228, blue: 228)
    /// The p90-total tick.
    public static let p90Color = RGBColor(red: 0, green: 0, blue: 0)
    /// The dashed line at the budget minus the margin.
    public static let budgetColor = RGBColor(red: 150, green: 0, blue: 0)

    /// Fixed colours for the pipeline's stages; other names take the spare colours in order.
    static let knownColors: [String: RGBColor] = [
        "text-to-image": RGBColor(red: 66, green: 133, blue: 244),
        "background": RGBColor(red: 251, green: 188, blue: 5),
        "gaussians": RGBColor(red: 52, green: 168, blue: 83),
        "validate": RGBColor(red: 234, green: 67, blue: 53),
        "ply": RGBColor(red: 155, green: 89, blue: 182),
    ]
    static let pipelineOrder = ["text-to-image", "background", "gaussians", "validate", "ply"]
    static let spareColors = [
        RGBColor(red: 0, green: 172, blue: 193), RGBColor(red: 255, green: 112, blue: 67),
        RGBColor(red: 121, green: 85, blue: 72), RGBColor(red: 96, green: 125, blue: 139),
    ]

    /// One stacked bar: where each stage's segment lies.
    public struct Bar: Equatable {
        public var label: String
        public var y: Int
        /// (stage, first x, width in pixels), left to right.
        public var segments: [(stage: String, x: Int, width: Int)]
        /// x of the p90-total tick.
        public var p90X: Int

        public static func == (a: Bar, b: Bar) -> Bool {
            a.label == b.label && a.y == b.y && a.p90X == b.p90X
                && a.segments.map { "\($0.stage)@\($0.x)+\($0.width)" } == b.segments.map { "\($0.stage)@\($0.x)+\($0.width)" }
        }
    }

    /// The chart's geometry, computed before drawing (the tests check the bars against it).
    public struct Layout {
        public var width: Int
        public var height: Int
        public var plotX: Int
        /// Pixels per second on the x axis.
        public var scale: Double
        public var axisMax: Double
        public var tickStep: Double
        public var bars: [Bar]
        public var stageColors: [(stage: String, color: RGBColor)]
        public var axisY: Int
        public var legendY: Int
        /// x of the budget line (budget minus margin); nil when it lies far beyond the bars.
        public var budgetX: Int?
        public var legend: [(name: String, color: RGBColor)]
    }

    public static func layout(_ result: BenchResult) -> Layout {
        let rows = result.rows.filter(\.hasTimings)
        var stageOrder: [String] = []
        for row in rows { for stage in row.stages where !stageOrder.contains(stage.name) { stageOrder.append(stage.name) } }
        // Legend in pipeline order, unknown stages after the known ones.
        stageOrder = pipelineOrder.filter(stageOrder.contains) + stageOrder.filter { !pipelineOrder.contains($0) }
        var spare = 0
        let colors = stageOrder.map { name -> (stage: String, color: RGBColor) in
            if let known = knownColors[name] { return (name, known) }
            defer { spare += 1 }
            return (name, spareColors[spare % spareColors.count])
        }

        let charHeight = BitmapFont.height(scale: textScale)
        let labelWidth = rows.map { BitmapFont.width(of: $0.configuration.id, scale: textScale) }.max() ?? 0
        let plotX = margin + labelWidth + margin
        let longest = rows.map { row in max(row.stages.reduce(0) { $0 + $1.seconds.median }, row.total!.p90) }.max() ?? 0
        // The budget line is drawn when it does not squash the bars (within 1.5x the longest bar).
        let limit = result.budget.limit
        let showBudget = limit <= 1.5 * longest
        let (axisMax, tickStep) = niceAxis(showBudget ? max(longest, limit) : longest)
        let scale = Double(plotWidth) / axisMax

        let titleY = margin
        var y = titleY + charHeight + margin
        var bars: [Bar] = []
        for row in rows {
            var x = plotX
            var segments: [(stage: String, x: Int, width: Int)] = []
            var elapsed = 0.0
            for stage in row.stages {
                elapsed += stage.seconds.median
                let end = plotX + Int((elapsed * scale).rounded())
                segments.append((stage.name, x, end - x))
                x = end
            }
            bars.append(Bar(label: row.configuration.id, y: y, segments: segments,
                            p90X: plotX + Int((row.total!.p90 * scale).rounded())))
            y += barHeight + barGap
        }
        let axisY = y
        let tickLabelsBottom = axisY + 6 + charHeight
        let axisTitleY = tickLabelsBottom + 8
        let legendY = axisTitleY + charHeight + margin
        var legend = colors.map { (name: $0.stage, color: $0.color) } + [(name: p90Legend, color: p90Color)]
        if showBudget { legend.append((name: String(format: "budget - margin (%.1f s)", limit), color: budgetColor)) }
        let legendRows = max(1, legendLines(legend.map(\.name), width: plotX + plotWidth).count)
        let height = legendY + legendRows * (charHeight + 10) + margin
        let width = max(plotX + plotWidth + margin * 3, BitmapFont.width(of: title, scale: textScale) + 2 * margin)
        return Layout(width: width, height: height, plotX: plotX, scale: scale, axisMax: axisMax, tickStep: tickStep,
                      bars: bars, stageColors: colors, axisY: axisY, legendY: legendY,
                      budgetX: showBudget ? plotX + Int((limit * scale).rounded()) : nil, legend: legend)
    }

    static let p90Legend = "p90 total"

    static let title = "Time per stage (median, seconds)"

    public static func render(_ result: BenchResult) throws -> Image {
        let rows = result.rows.filter(\.hasTimings)
        guard !rows.isEmpty else {
            let message = "No configuration was measured"
            var canvas = try ChartCanvas(width: BitmapFont.width(of: message, scale: textScale) + 2 * margin,
                                         height: BitmapFont.height(scale: textScale) + 2 * margin)
            canvas.text(message, x: margin, y: margin, scale: textScale, color: textColor)
            return try canvas.image()
        }
        let layout = self.layout(result)
        var canvas = try ChartCanvas(width: layout.width, height: layout.height)
        let charHeight = BitmapFont.height(scale: textScale)
        canvas.text(title, x: margin, y: margin, scale: textScale, color: textColor)

        // Grid and ticks first, so bars cover the grid lines.
        let plotTop = margin + charHeight + margin - barGap / 2
        var tick = 0.0
        while tick <= layout.axisMax + layout.tickStep * 1e-9 {
            let x = layout.plotX + Int((tick * layout.scale).rounded())
            canvas.fill(x: x, y: plotTop, width: 1, height: layout.axisY - plotTop, color: gridColor)
            canvas.fill(x: x, y: layout.axisY, width: 1, height: 5, color: axisColor)
            let label = tickLabel(tick, step: layout.tickStep)
            canvas.text(label, x: x - BitmapFont.width(of: label, scale: textScale) / 2, y: layout.axisY + 8,
                        scale: textScale, color: textColor)
            tick += layout.tickStep
        }
        canvas.fill(x: layout.plotX, y: plotTop, width: 1, height: layout.axisY - plotTop, color: axisColor)
        canvas.fill(x: layout.plotX, y: layout.axisY, width: plotWidth + 1, height: 1, color: axisColor)
        let axisTitle = "seconds"
        canvas.text(axisTitle, x: layout.plotX + (plotWidth - BitmapFont.width(of: axisTitle, scale: textScale)) / 2,
                    y: layout.axisY + 8 + charHeight + 8, scale: textScale, color: textColor)

        let colorOf = Dictionary(uniqueKeysWithValues: layout.stageColors.map { ($0.stage, $0.color) })
        for bar in layout.bars {
            canvas.text(bar.label, x: margin, y: bar.y + (barHeight - charHeight) / 2, scale: textScale, color: textColor)
            for segment in bar.segments {
                canvas.fill(x: segment.x, y: bar.y, width: segment.width, height: barHeight, color: colorOf[segment.stage]!)
            }
            canvas.fill(x: bar.p90X - 1, y: bar.y - 4, width: 3, height: barHeight + 8, color: p90Color)
        }
        if let budgetX = layout.budgetX {
            var y = plotTop
            while y < layout.axisY {
                canvas.fill(x: budgetX, y: y, width: 2, height: min(6, layout.axisY - y), color: budgetColor)
                y += 10
            }
        }

        // Legend: a swatch and the stage name, wrapped onto as many lines as needed.
        var y = layout.legendY
        for line in legendLines(layout.legend.map(\.name), width: layout.plotX + plotWidth) {
            var x = margin
            for name in line {
                let color = layout.legend.first { $0.name == name }!.color
                if name == p90Legend {
                    canvas.fill(x: x + 5, y: y - 2, width: 3, height: charHeight + 4, color: color)
                } else if color == budgetColor {
                    canvas.fill(x: x + 5, y: y - 2, width: 2, height: 6, color: color)
                    canvas.fill(x: x + 5, y: y + 8, width: 2, height: 6, color: color)
                } else {
                    canvas.fill(x: x, y: y, width: charHeight, height: charHeight, color: color)
                }
                canvas.text(name, x: x + charHeight + 6, y: y, scale: textScale, color: textColor)
                x += legendEntryWidth(name)
            }
            y += charHeight + 10
        }
        return try canvas.image()
    }

    static func legendEntryWidth(_ name: String) -> Int {
        BitmapFont.height(scale: textScale) + 6 + BitmapFont.width(of: name, scale: textScale) + 24
    }

    static func legendLines(_ names: [String], width: Int) -> [[String]] {
        var lines: [[String]] = [[]]
        var x = margin
        for name in names {
            let w = legendEntryWidth(name)
            if x + w > width, !lines[lines.count - 1].isEmpty {
                lines.append([])
                x = margin
            }
            lines[lines.count - 1].append(name)
            x += w
        }
        return lines
    }

    /// An axis end and tick step of 1, 2 or 5 x 10^k giving 4 to 10 ticks that cover `value`.
    static func niceAxis(_ value: Double) -> (max: Double, step: Double) {
        guard value.isFinite, value > 0 else { return (1, 0.2) }
        let rough = value / 5
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        return ((value / step).rounded(.up) * step, step)
    }

    static func tickLabel(_ value: Double, step: Double) -> String {
        let decimals = max(0, Int((-log10(step)).rounded(.up)))
        return String(format: "%.\(decimals)f", value)
    }
}
