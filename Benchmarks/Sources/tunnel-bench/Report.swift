import Foundation

/// Every run of every subject of one scenario, and the medians the table shows.
struct ScenarioReport: Codable {
    let scenario: String
    let primary: String
    /// subject → runs (metric → value), in the order subjects were measured.
    var runs: [String: [Metrics]] = [:]
    var order: [String] = []

    init(spec: ScenarioSpec) {
        scenario = spec.name
        primary = spec.primary
    }

    mutating func add(_ subject: String, _ metrics: Metrics) {
        if runs[subject] == nil { order.append(subject) }
        runs[subject, default: []].append(metrics)
    }

    func median(_ subject: String, _ key: String) -> Double? {
        let values = (runs[subject] ?? []).compactMap { $0[key] }.sorted()
        return values.isEmpty ? nil : values[values.count / 2]
    }

    var medians: [String: Metrics] {
        var result: [String: Metrics] = [:]
        for subject in order {
            var metrics: Metrics = [:]
            for key in Set((runs[subject] ?? []).flatMap(\.keys)) { metrics[key] = median(subject, key) }
            result[subject] = metrics
        }
        return result
    }

    /// The table: one row per subject, medians, and the primary metric's ratio to the first row.
    func table(spec: ScenarioSpec, extra: [(String, Double)] = []) -> String {
        let header = ["", ] + spec.columns.map(\.label) + ["ratio"] + extra.map(\.0)
        var rows: [[String]] = []
        let first = order.first.flatMap { median($0, spec.primary) }
        for subject in order {
            var row = [subject]
            for column in spec.columns { row.append(median(subject, column.key).map(format) ?? "-") }
            if let first, let value = median(subject, spec.primary), first > 0 { row.append(format(value / first)) } else { row.append("-") }
            for (_, denominator) in extra {
                row.append(median(subject, spec.primary).map { format($0 / denominator) } ?? "-")
            }
            rows.append(row)
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! + 2 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined()
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

func format(_ value: Double) -> String {
    if value >= 100 { return String(Int(value.rounded())) }
    if value >= 10 { return String(format: "%.1f", value) }
    return String(format: "%.2f", value)
}

/// A bar chart per scenario of the primary metric's median, one bar per subject.
func svgChart(_ reports: [ScenarioReport]) -> String {
    let barHeight = 22, gap = 8, labelWidth = 170, chartWidth = 520
    var y = 20
    var body = ""
    for report in reports {
        let medians = report.order.compactMap { subject in report.median(subject, report.primary).map { (subject, $0) } }
        guard let maxValue = medians.map(\.1).max(), maxValue > 0 else { continue }
        body += "<text x=\"10\" y=\"\(y)\" font-weight=\"bold\">\(report.scenario) (\(report.primary))</text>\n"
        y += 10
        for (index, (subject, value)) in medians.enumerated() {
            let width = Int(Double(chartWidth) * value / maxValue)
            let color = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"][index % 6]
            body += "<text x=\"10\" y=\"\(y + 15)\">\(subject)</text>"
            body += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(width)\" height=\"\(barHeight)\" fill=\"\(color)\"/>"
            body += "<text x=\"\(labelWidth + width + 6)\" y=\"\(y + 15)\">\(format(value))</text>\n"
            y += barHeight + gap
        }
        y += 20
    }
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(labelWidth + chartWidth + 120)\" height=\"\(y)\" font-family=\"sans-serif\" font-size=\"13\">\n\(body)</svg>\n"
}
