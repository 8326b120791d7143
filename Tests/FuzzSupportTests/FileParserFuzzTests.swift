import Foundation
import Fixtures
import XCTest
@testable import FuzzSupport

/// The short run of `gen3d fuzz-files` (same engine and targets, seed 1): every parser gets `casesPerParser` mutated
/// files; none may trap (a trap kills this test process), and every rejection must name the file. The full run
/// (>= 10,000 per parser, each parser in a child process that reports crashes) is `gen3d fuzz-files`.
final class FileParserFuzzTests: XCTestCase {
    static let casesPerParser = 2000

    static func packageRoot() throws -> URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("assets/fuzz").path) {
            // A missing corpus fails the test: a fuzz run that silently does nothing would pass.
            guard dir.path != "/" else { throw MissingCorpus(description: "package root (assets/fuzz) not found above \(#filePath)") }
            dir.deleteLastPathComponent()
        }
        return dir
    }

    func fuzz(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let target = try FileParserTargets.target(named: name, root: Self.packageRoot())
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let outcome = try FuzzRunner(workDirectory: work).run(target, seed: 1, cases: 0..<Self.casesPerParser)
        XCTAssertEqual(outcome.cases, Self.casesPerParser, file: file, line: line)
        XCTAssertEqual(outcome.findings, [], outcome.findings.prefix(5).map(\.description).joined(separator: "\n"),
                       file: file, line: line)
        // The mutations must break most files yet leave some valid: both outcomes occur.
        XCTAssertGreaterThan(outcome.rejected, Self.casesPerParser / 2, file: file, line: line)
        XCTAssertGreaterThan(outcome.accepted, 0, file: file, line: line)
    }

    func testSafeTensors() throws { try fuzz("safetensors") }
    func testPLY() throws { try fuzz("ply") }
    func testPNG() throws { try fuzz("png") }
    func testJPEG() throws { try fuzz("jpeg") }
    func testJSONConfigs() throws { try fuzz("json-config") }
    func testTokenizerFiles() throws { try fuzz("tokenizer") }
    func testFixtureCases() throws { try fuzz("fixture-case") }
    func testTorchCheckpoints() throws { try fuzz("pth") }

    func testEveryTargetHasSeedsThatParse() throws {
        let root = try Self.packageRoot()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-seeds-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        for target in try FileParserTargets.all(root: root) {
            XCTAssertFalse(target.seeds.isEmpty, target.name)
            for (i, seed) in target.seeds.enumerated() {
                let url = FuzzRunner(workDirectory: work).casePath(target, seedIndex: i)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                for (name, bytes) in seed.companions { try Data(bytes).write(to: url.deletingLastPathComponent().appendingPathComponent(name)) }
                try Data(seed.bytes).write(to: url)
                XCTAssertNoThrow(try seed.parse(url), "\(target.name): seed \(seed.label) must parse unmutated")
            }
        }
    }
}

/// The mutation engine: deterministic, and its structured mutations do what they say.
final class MutatorTests: XCTestCase {
    func testCasesAreDeterministicPerSeedTargetAndIndex() throws {
        let target = FileParserTarget(name: "t", format: .json, seeds: [
            FuzzSeed(label: "s", fileName: "f.json", bytes: Array(#"{"a": [1, 2, 3], "b": "F32"}"#.utf8)) { _ in },
        ])
        let a = FuzzRunner.caseInput(target, seed: 7, index: 3), b = FuzzRunner.caseInput(target, seed: 7, index: 3)
        XCTAssertEqual(a.bytes, b.bytes)
        XCTAssertEqual(a.mutation, b.mutation)
        let distinct = Set((0..<50).map { FuzzRunner.caseInput(target, seed: 7, index: $0).bytes })
        XCTAssertGreaterThan(distinct.count, 40)
        XCTAssertNotEqual(FuzzRunner.caseInput(target, seed: 8, index: 3).bytes, a.bytes)
    }

    /// Header mutations keep the length prefix consistent, so the parser reaches the entries.
    func testSafeTensorsHeaderMutationsFixTheLength() {
        let header = Array(#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#.utf8)
        let seed = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + [UInt8](repeating: 0, count: 16)
        let mutator = Mutator(format: .safetensors)
        var fixedLengths = 0, extremeLengths = 0
        for i in 0..<200 {
            var random = FuzzRandom(seed: 1, stream: "st", index: i)
            var bytes = seed
            guard let step = mutator.mutateSafeTensors(&bytes, random: &random) else { continue }
            let length = bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            if step.hasPrefix("header length") { extremeLengths += 1; continue }
            XCTAssertEqual(Int(length), bytes.count - 8 - 16, step)
            fixedLengths += 1
        }
        XCTAssertGreaterThan(fixedLengths, 50)
        XCTAssertGreaterThan(extremeLengths, 10)
    }

    func testPNGDimensionMutationKeepsTheCRCValid() throws {
        // 1x1 gray PNG header chunk with its CRC.
        var ihdr: [UInt8] = Array("IHDR".utf8) + [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]
        let crc = CRC32.checksum(ihdr[...])
        ihdr = [0, 0, 0, 13] + ihdr + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + ihdr
        XCTAssertEqual(CRC32.checksum(Array("IEND".utf8)[...]), 0xAE42_6082)   // the constant every PNG ends with
        let chunk = try XCTUnwrap(ImageMutations.pngChunks(png).first)
        var copy = png
        copy[chunk.data] = 0x7F
        ImageMutations.fixCRC(&copy, chunk)
        let stored = copy.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        XCTAssertEqual(stored, CRC32.checksum(copy[(chunk.data - 4)..<(chunk.data + chunk.length)]))
    }
}

/// The zip re-packer behind the pickle mutations: torch's own checkpoint, re-packed unchanged, still loads the same.
final class ZipArchiveTests: XCTestCase {
    func testRepackedTorchCheckpointStillParses() throws {
        let root = try FileParserFuzzTests.packageRoot()
        let original = Array(try Data(contentsOf: root.appendingPathComponent("Tests/ModelsTests/Resources/torch_checkpoints/state_dict.pth")))
        let entries = try XCTUnwrap(ZipArchive.entries(original))
        XCTAssertTrue(entries.contains { $0.name.hasSuffix("data.pkl") })
        let repacked = ZipArchive.pack(entries)
        XCTAssertEqual(ZipArchive.entries(repacked)?.map(\.name), entries.map(\.name))
        XCTAssertEqual(ZipArchive.entries(repacked)?.map(\.data), entries.map(\.data))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("repacked-\(UUID().uuidString).pth")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(repacked).write(to: url)
        XCTAssertNoThrow(try FileParserTargets.parseTorchCheckpoint(url))
    }
}

struct MissingCorpus: Error, CustomStringConvertible {
    let description: String
}
