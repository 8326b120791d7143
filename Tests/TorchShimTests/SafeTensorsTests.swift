import Foundation
import XCTest
@testable import TorchShim

final class SafeTensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func sample() throws -> [String: Tensor] {
        [
            "f32": try Tensor([Float(1), 2, 3, 4, 5, 6], shape: [2, 3]),
            "f16": try Tensor([Float(0.5), -1.25], shape: [2]).to(.float16),
            "bf16": try Tensor([Float(3), 4], shape: [1, 2]).to(.bfloat16),
            "f64": try Tensor([1.5, 2.5]),
            "i64": try Tensor([Int64(-7), 8]),
            "i32": try Tensor([Int32(9)], shape: [1]),
            "i16": try Tensor([Int16(-3), 4]),
            "i8": try Tensor([Int8(-1), 1]),
            "u8": try Tensor([UInt8(255), 0, 7]),
            "bool": try Tensor([true, false]),
            "empty": try Tensor.zeros([0, 4]),
        ]
    }

    func testRoundTripEveryDType() throws {
        let tensors = try sample()
        let url = dir.appendingPathComponent("a.safetensors")
        try SafeTensors.write(tensors, metadata: ["format": "pt", "weights": "x.safetensors"], to: url)
        let f = try SafeTensorsFile(url: url)
        XCTAssertEqual(f.metadata["weights"], "x.safetensors")
        XCTAssertEqual(Set(f.keys), Set(tensors.keys))
        for (k, t) in tensors {
            let r = try f.tensor(k)
            XCTAssertEqual(r.dtype, t.dtype, k)
            XCTAssertEqual(r.shape, t.shape, k)
            XCTAssertEqual(try r.bytes(), try t.bytes(), k)
        }
        // zero-copy tensors outlive the file object
        let kept = try SafeTensorsFile(url: url).tensor("f32")
        XCTAssertEqual(try kept.floats(), [1, 2, 3, 4, 5, 6])
        // in-place writes go to a private mapping, not the file
        try kept.mul_(2)
        XCTAssertEqual(try SafeTensorsFile(url: url).tensor("f32").floats(), [1, 2, 3, 4, 5, 6])
    }

    func testShardedIndex() throws {
        let t = try sample()
        try SafeTensors.write(["f32": t["f32"]!, "i64": t["i64"]!], to: dir.appendingPathComponent("m-00001.safetensors"))
        try SafeTensors.write(["u8": t["u8"]!], to: dir.appendingPathComponent("m-00002.safetensors"))
        let index = #"{"metadata": {}, "weight_map": {"f32": "m-00001.safetensors", "i64": "m-00001.safetensors", "u8": "m-00002.safetensors"}}"#
        try index.write(to: dir.appendingPathComponent("m.safetensors.index.json"), atomically: true, encoding: .utf8)
        let w = try SafeTensors.open(dir)
        XCTAssertEqual(w.keys, ["f32", "i64", "u8"])
        XCTAssertEqual(try w.tensor("u8").toArray(UInt8.self), [255, 0, 7])
        XCTAssertThrowsError(try w.tensor("nope")) { XCTAssertTrue("\($0)".contains("nope")) }
        // an index naming a key its shard lacks
        let bad = #"{"weight_map": {"ghost": "m-00002.safetensors"}}"#
        try bad.write(to: dir.appendingPathComponent("bad.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ShardedSafeTensors(indexURL: dir.appendingPathComponent("bad.json"))) {
            XCTAssertTrue("\($0)".contains("ghost"))
        }
    }

    func write(_ bytes: [UInt8], _ name: String) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    func headerFile(_ json: String, data: [UInt8] = []) -> [UInt8] {
        let h = Array(json.utf8)
        var len = UInt64(h.count).littleEndian
        return withUnsafeBytes(of: &len) { Array($0) } + h + data
    }

    func expectError(_ bytes: [UInt8], _ check: (SafeTensorsError) -> Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try write(bytes, "c\(UUID().uuidString).safetensors")
        XCTAssertThrowsError(try SafeTensorsFile(url: url), file: file, line: line) { e in
            guard let s = e as? SafeTensorsError else { return XCTFail("wrong error \(e)", file: file, line: line) }
            XCTAssertTrue(check(s), "unexpected \(s)", file: file, line: line)
        }
    }

    func testCorruptFiles() throws {
        // shorter than the length prefix
        try expectError([1, 2, 3]) { if case .truncated = $0 { return true } else { return false } }
        // header length beyond the file
        try expectError(headerFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#).dropLast(3).map { $0 }) {
            if case .truncated = $0 { return true } else { return false }
        }
        // absurd header length
        var huge = UInt64(1 << 40).littleEndian
        try expectError(withUnsafeBytes(of: &huge) { Array($0) } + [0, 0]) {
            if case .badHeader = $0 { return true } else { return false }
        }
        // not JSON
        try expectError(headerFile("{nope")) { if case .badHeader = $0 { return true } else { return false } }
        // offsets beyond the data
        try expectError(headerFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0])) {
            $0 == .offsetOutOfRange($0.path, "a")
        }
        // byte count inconsistent with the shape
        try expectError(headerFile(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8))) {
            if case .badHeader = $0 { return true } else { return false }
        }
        // unknown dtype
        try expectError(headerFile(#"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8))) {
            if case .unsupportedDType = $0 { return true } else { return false }
        }
        // missing key at lookup
        let ok = try write(headerFile(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [9]), "ok.safetensors")
        let f = try SafeTensorsFile(url: ok)
        XCTAssertEqual(try f.tensor("a").toArray(UInt8.self), [9])
        XCTAssertThrowsError(try f.tensor("b")) { XCTAssertEqual($0 as? SafeTensorsError, .missingKey(ok.path, "b")) }
        XCTAssertThrowsError(try SafeTensorsFile(path: dir.appendingPathComponent("absent").path))
    }
}

extension SafeTensorsError {
    var path: String {
        switch self {
        case .cannotOpen(let p, _), .truncated(let p), .badHeader(let p, _), .offsetOutOfRange(let p, _),
             .missingKey(let p, _), .unsupportedDType(let p, _): return p
        }
    }
}
