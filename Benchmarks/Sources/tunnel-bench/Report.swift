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

    /// The lowest and highest of the runs, so a reader sees how far the median can be trusted.
    func spread(_ subject: String, _ key: String) -> String? {
        let values = (runs[subject] ?? []).compactMap { $0[key] }
        guard let low = values.min(), let high = values.max(), values.count > 1 else { return nil }
        return "\(format(low))–\(format(high))"
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

    /// The table: one row per subject, medians, the primary metric's range over the runs and its
    /// ratio to the first row, and one column per `extra` (label, subject → denominator of the
    /// primary metric).
    func table(spec: ScenarioSpec, extra: [(label: String, denominator: (String) -> Double?)] = []) -> String {
        let primaryHeader = spec.columns.first { $0.key == spec.primary }?.header ?? spec.primary
        let header = [""] + spec.columns.map(\.header) + ["\(primaryHeader) range"] + ["ratio"] + extra.map(\.label)
        var rows: [[String]] = []
        let first = order.first.flatMap { median($0, spec.primary) }
        for subject in order {
            var row = [subject]
            for column in spec.columns { row.append(median(subject, column.key).map(format) ?? "-") }
            row.append(spread(subject, spec.primary) ?? "-")
            let value = median(subject, spec.primary)
            if let first, let value, first > 0 { row.append(format(value / first)) } else { row.append("-") }
            for column in extra {
                if let value, let denominator = column.denominator(subject), denominator > 0 { row.append(format(value / denominator)) } else { row.append("-") }
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

/// What the numbers were measured on.
struct Machine: Codable {
    let cores: Int
    let cpuModel: String
    let kernel: String
    let memoryGiB: Double
    let date: String

    static func current() -> Machine {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        return Machine(cores: ProcessInfo.processInfo.activeProcessorCount, cpuModel: model, kernel: "Linux \(release)",
                       memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / Double(1 << 30),
                       date: ISO8601DateFormatter().string(from: Date()))
    }

    var summary: String { "\(cores) cores (\(cpuModel)), \(kernel), \(format(memoryGiB)) GiB, \(date)" }
}

/// Everything one harness run wrote: where, with what, and every run of every scenario.
struct HarnessResults: Codable {
    let machine: Machine
    let settings: Settings
    let repeats: Int
    let implementations: [Implementation]
    let scenarios: [ScenarioReport]
}

/// One horizontal bar chart per charted metric of each scenario (medians, one bar per subject),
/// each with a value axis labelled with its unit; the machine facts on top.
func svgChart(_ results: HarnessResults, specs: [String: ScenarioSpec]) -> String {
    let barHeight = 20, gap = 6, labelWidth = 170, chartWidth = 480
    var y = 22
    var body = "<text x=\"10\" y=\"\(y)\" font-weight=\"bold\">tunnel-bench: \(escape(results.machine.summary))</text>\n"
    y += 30
    for report in results.scenarios {
        guard let spec = specs[report.scenario] else { continue }
        for column in spec.columns where spec.charted.contains(column.key) {
            let medians = report.order.compactMap { subject in report.median(subject, column.key).map { (subject, $0) } }
            guard let maxValue = medians.map(\.1).max(), maxValue > 0 else { continue }
            body += "<text x=\"10\" y=\"\(y)\" font-weight=\"bold\">\(report.scenario): \(column.label) (\(column.unit))</text>\n"
            y += 8
            for (index, (subject, value)) in medians.enumerated() {
                let width = Int(Double(chartWidth) * value / maxValue)
                let color = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"][index % 6]
                body += "<text x=\"10\" y=\"\(y + 15)\">\(escape(subject))</text>"
                body += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(width)\" height=\"\(barHeight)\" fill=\"\(color)\"/>"
                body += "<text x=\"\(labelWidth + width + 6)\" y=\"\(y + 15)\">\(format(value)) \(column.unit)</text>\n"
                y += barHeight + gap
            }
            // The value axis: 0, half and the maximum, and the unit.
            body += "<line x1=\"\(labelWidth)\" y1=\"\(y)\" x2=\"\(labelWidth + chartWidth)\" y2=\"\(y)\" stroke=\"#333\"/>\n"
            for fraction in [0.0, 0.5, 1.0] {
                let x = labelWidth + Int(Double(chartWidth) * fraction)
                body += "<line x1=\"\(x)\" y1=\"\(y)\" x2=\"\(x)\" y2=\"\(y + 4)\" stroke=\"#333\"/>"
                body += "<text x=\"\(x)\" y=\"\(y + 16)\" text-anchor=\"middle\" font-size=\"11\">\(fraction == 0 ? "0" : format(maxValue * fraction))</text>\n"
            }
            body += "<text x=\"\(labelWidth + chartWidth + 30)\" y=\"\(y + 16)\" font-size=\"11\">\(column.unit)</text>\n"
            y += 40
        }
    }
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(labelWidth + chartWidth + 160)\" height=\"\(y)\" font-family=\"sans-serif\" font-size=\"13\">\n\(body)</svg>\n"
}

func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}
