import Foundation
import NN
import TorchShim

/// One oracle case in the shared fixture format (fixtures/FORMAT.md): `<stem>.json` = {"name", "args", ...}
/// with its data in `<stem>.safetensors` / `<stem>_io.safetensors`, or the files the JSON names.
public struct FixtureCase {
    public let directory: URL
    public let stem: String
    public let json: [String: Any]

    public var className: String { json["name"] as? String ?? "" }
    public var args: [String: Any] { json["args"] as? [String: Any] ?? [:] }
    public var label: String { "\(directory.lastPathComponent)/\(stem)" }

    public init(directory: URL, stem: String, json: [String: Any]) {
        self.directory = directory
        self.stem = stem
        self.json = json
    }

    public func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// The weights: `"weights"` if named, else `<stem>.safetensors`.
    public func weights() throws -> WeightSource {
        let name = json["weights"] as? String ?? "\(stem).safetensors"
        return try SafeTensors.open(url(name))
    }

    /// The io files: `"io"` if listed, else `<stem>_io.safetensors`.
    public func ioFiles() throws -> [SafeTensorsFile] {
        let names = json["io"] as? [String] ?? ["\(stem)_io.safetensors"]
        return try names.map { try SafeTensorsFile(url: url($0)) }
    }

    /// The single io file (most cases have one).
    public func io() throws -> SafeTensorsFile {
        guard let f = try ioFiles().first else { throw FixtureError.malformed(label, "no io file") }
        return f
    }

    /// The `args` object decoded as `T` (configs are decoded from the checkpoint's own JSON).
    public func decodeArgs<T: Decodable>(_ type: T.Type) throws -> T {
        let data = try JSONSerialization.data(withJSONObject: args)
        return try JSONDecoder().decode(T.self, from: data)
    }
}

public enum FixtureError: Error, CustomStringConvertible {
    case unknownClass(String, String)
    case malformed(String, String)

    public var description: String {
        switch self {
        case .unknownClass(let c, let l): return "\(l): no Swift implementation registered for class '\(c)'"
        case .malformed(let l, let why): return "\(l): \(why)"
        }
    }
}

/// max |got - expected| and max |got - expected| / (|expected| + tiny) of one output, against its tolerance
/// (passes when every element has |d| <= atol + rtol * |expected|).
public struct TensorComparison: CustomStringConvertible {
    public let name: String
    public let maxAbs: Double
    public let maxRel: Double
    public let atol: Double
    public let rtol: Double
    public let passed: Bool
    public let note: String

    public init(name: String, maxAbs: Double, maxRel: Double, atol: Double, rtol: Double, passed: Bool, note: String = "") {
        self.name = name
        self.maxAbs = maxAbs
        self.maxRel = maxRel
        self.atol = atol
        self.rtol = rtol
        self.passed = passed
        self.note = note
    }

    /// Compares two tensors (any dtype/device) in float64 on the CPU. Shapes must match exactly.
    public static func compare(_ name: String, got: Tensor, expected: Tensor, atol: Double, rtol: Double = 0) throws
        -> TensorComparison {
        guard got.shape == expected.shape else {
            return TensorComparison(name: name, maxAbs: .infinity, maxRel: .infinity, atol: atol, rtol: rtol,
                                    passed: false, note: "shape \(got.shape) != expected \(expected.shape)")
        }
        if got.count == 0 {
            return TensorComparison(name: name, maxAbs: 0, maxRel: 0, atol: atol, rtol: rtol, passed: true)
        }
        let g = try got.to(.cpu, dtype: .float64), e = try expected.to(.cpu, dtype: .float64)
        let diff = try (g - e).abs()
        let nonFinite = try (g.isfinite().logicalNot().sum().item() > 0)
        let maxAbs = try diff.max().item()
        let maxRel = try (diff / (e.abs() + 1e-12)).max().item()
        let within = try diff.le(e.abs() * rtol + atol).all().item() != 0
        return TensorComparison(name: name, maxAbs: maxAbs, maxRel: maxRel, atol: atol, rtol: rtol,
                                passed: within && !nonFinite, note: nonFinite ? "non-finite values" : "")
    }

    /// An exact comparison of integer data (coordinates, token ids).
    public static func exact(_ name: String, got: Tensor, expected: Tensor) throws -> TensorComparison {
        guard got.shape == expected.shape else {
            return TensorComparison(name: name, maxAbs: .infinity, maxRel: .infinity, atol: 0, rtol: 0, passed: false,
                                    note: "shape \(got.shape) != expected \(expected.shape)")
        }
        let g = try got.to(.cpu, dtype: .int64), e = try expected.to(.cpu, dtype: .int64)
        let mismatches = try g.ne(e).sum().itemInt()
        let maxAbs = got.count == 0 ? 0 : try (g - e).abs().max().item()
        return TensorComparison(name: name, maxAbs: maxAbs, maxRel: 0, atol: 0, rtol: 0, passed: mismatches == 0,
                                note: mismatches == 0 ? "exact" : "\(mismatches) mismatching elements")
    }

    public var description: String {
        let status = passed ? "ok  " : "FAIL"
        return String(format: "%@ %@  max abs %.3e  max rel %.3e  (atol %.1e, rtol %.1e)%@", status, name, maxAbs,
                      maxRel, atol, rtol, note.isEmpty ? "" : "  " + note)
    }
}

/// Runs a case and returns one comparison per checked output.
public typealias FixtureHandler = (FixtureCase) throws -> [TensorComparison]

/// Finds extra cases in a folder whose layout differs from the default (e.g. BiRefNet's `<p>_config.json`).
public typealias FixtureScanner = (URL) throws -> [FixtureCase]

public struct FixtureResult {
    public let fixture: FixtureCase
    public let comparisons: [TensorComparison]
    public let error: String?
    public let seconds: Double
    public var passed: Bool { error == nil && !comparisons.isEmpty && comparisons.allSatisfy(\.passed) }
}

/// Discovers and runs every case of a fixture folder, dispatching on the class name.
public struct FixtureRunner {
    public var handlers: [String: FixtureHandler]
    public var scanners: [FixtureScanner]

    public init(handlers: [String: FixtureHandler] = FixtureRegistry.handlers,
                scanners: [FixtureScanner] = FixtureRegistry.scanners) {
        self.handlers = handlers
        self.scanners = scanners
    }

    /// Cases in `directory` (not recursive): JSON files with an `"io"` list or a `<stem>_io.safetensors` beside
    /// them, plus whatever the scanners find.
    public func discover(_ directory: URL) throws -> [FixtureCase] {
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: directory.path).sorted()
        var cases: [FixtureCase] = []
        var seen = Set<String>()
        for name in names where name.hasSuffix(".json") {
            let stem = String(name.dropLast(5))
            let url = directory.appendingPathComponent(name)
            let hasIOFile = fm.fileExists(atPath: directory.appendingPathComponent("\(stem)_io.safetensors").path)
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw FixtureError.malformed(url.path, "cannot read (\(error.localizedDescription))")
            }
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                // A JSON file with an io file beside it is a case: an unreadable one must not be skipped silently.
                if hasIOFile { throw FixtureError.malformed(url.path, "case JSON is not a JSON object") }
                continue
            }
            if hasIOFile, !(json["name"] is String) { throw FixtureError.malformed(url.path, "case has no \"name\" string") }
            let hasIO = json["io"] is [Any] || hasIOFile
            guard hasIO, json["name"] is String else { continue }
            cases.append(FixtureCase(directory: directory, stem: stem, json: json))
            seen.insert(stem)
        }
        for scan in scanners {
            for c in try scan(directory) where !seen.contains(c.stem) {
                cases.append(c)
                seen.insert(c.stem)
            }
        }
        return cases
    }

    public func run(_ fixture: FixtureCase) -> FixtureResult {
        let start = Date()
        guard let handler = handlers[fixture.className] else {
            return FixtureResult(fixture: fixture, comparisons: [],
                                 error: FixtureError.unknownClass(fixture.className, fixture.label).description, seconds: 0)
        }
        do {
            let comparisons = try handler(fixture)
            return FixtureResult(fixture: fixture, comparisons: comparisons,
                                 error: comparisons.isEmpty ? "no outputs were compared" : nil,
                                 seconds: Date().timeIntervalSince(start))
        } catch {
            return FixtureResult(fixture: fixture, comparisons: [], error: "\(error)", seconds: Date().timeIntervalSince(start))
        }
    }

    public func runFolder(_ directory: URL) throws -> [FixtureResult] {
        try discover(directory).map(run)
    }
}
