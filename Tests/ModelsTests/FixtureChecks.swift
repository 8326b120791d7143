import Foundation
import NN
import Fixtures
import TorchShim
import XCTest

/// Checks every model family's parity tests make the same way.
enum FixtureChecks {
    /// Every tensor of a safetensors file, in memory (so a test can drop, reshape or add keys).
    static func weights(_ url: URL) throws -> TensorDictionary {
        let file = try SafeTensorsFile(url: url)
        var dict: [String: Tensor] = [:]
        for k in file.keys { dict[k] = try file.tensor(k) }
        return TensorDictionary(dict)
    }

    /// Loads the checkpoint with one key removed / one key reshaped / one key added, and checks each error names
    /// that key.
    static func assertLoaderRejects(_ weightsFile: URL, missing: String, reshaped: String,
                                    load: (WeightLoader) throws -> Void,
                                    file: StaticString = #filePath, line: UInt = #line) throws {
        let dropped = try weights(weightsFile)
        XCTAssertNotNil(dropped[missing], "fixture lacks \(missing)", file: file, line: line)
        dropped[missing] = nil
        XCTAssertThrowsError(try load(WeightLoader(dropped)), file: file, line: line) { error in
            guard case .missing(let key, _)? = error as? WeightError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(key, missing, file: file, line: line)
        }
        let bent = try weights(weightsFile)
        let original = try XCTUnwrap(bent[reshaped], file: file, line: line)
        bent[reshaped] = try Tensor.zeros(original.shape.dropLast() + [original.shape.last! + 1])
        XCTAssertThrowsError(try load(WeightLoader(bent)), file: file, line: line) { error in
            guard case .shapeMismatch(let key, _, _)? = error as? WeightError else {
                return XCTFail("\(error)", file: file, line: line)
            }
            XCTAssertEqual(key, reshaped, file: file, line: line)
        }
        let extra = try weights(weightsFile)
        extra["surplus.weight"] = try Tensor.zeros([2])
        let w = WeightLoader(extra)
        try load(w)
        XCTAssertThrowsError(try w.checkAllUsed(), file: file, line: line) {
            XCTAssertTrue("\($0)".contains("surplus.weight"), "\($0)", file: file, line: line)
        }
    }

    /// The case `stem` of the fixture folder `dir`.
    static func fixtureCase(in dir: URL, _ stem: String) throws -> FixtureCase {
        let cases = try FixtureRunner().discover(dir)
        return try XCTUnwrap(cases.first { $0.stem == stem }, "fixture case \(stem) not found in \(dir.path)")
    }

    /// Runs a case through the registered selftest handler, prints the comparisons and asserts they all pass and
    /// include `names`.
    @discardableResult
    static func runRegistered(in dir: URL, _ stem: String, expecting names: [String],
                              file: StaticString = #filePath, line: UInt = #line) throws -> FixtureResult {
        let result = FixtureRunner().run(try fixtureCase(in: dir, stem))
        print("\(stem): \(result.seconds) s")
        result.comparisons.forEach { print("  \($0)") }
        XCTAssertNil(result.error, result.error ?? "", file: file, line: line)
        XCTAssertTrue(result.passed, file: file, line: line)
        let compared = Set(result.comparisons.map(\.name))
        for name in names {
            XCTAssertTrue(compared.contains(name), "\(stem): \(name) was not compared", file: file, line: line)
        }
        return result
    }
}
