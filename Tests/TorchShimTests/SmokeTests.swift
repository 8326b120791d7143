import XCTest
@testable import TorchShim

final class SmokeTests: XCTestCase {
    func testRandnMatchesTorchSeed() throws {
        let g = try Generator(seed: 0)
        let t = try Tensor.randn([3], generator: g)
        let v = try t.floats()
        // torch.manual_seed(0); torch.randn(3) -> [1.5410, -0.2934, -2.1788]
        XCTAssertEqual(v[0], 1.5410, accuracy: 1e-4)
        XCTAssertEqual(v[1], -0.2934, accuracy: 1e-4)
        XCTAssertEqual(v[2], -2.1788, accuracy: 1e-4)
    }

    func testErrorSurfaces() throws {
        let a = try Tensor.zeros([2, 3]), b = try Tensor.zeros([4, 5])
        XCTAssertThrowsError(try a.matmul(b)) { e in XCTAssertTrue("\(e)".contains("shapes")) }
    }

    func testFixtureLoads() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/fixtures/trellis/ss_flow.safetensors")
        let f = try SafeTensorsFile(url: url.standardizedFileURL)
        XCTAssertFalse(f.keys.isEmpty)
        let t = try f.tensor(f.keys[0])
        XCTAssertEqual(t.shape, f.info(f.keys[0])!.shape)
        _ = try (t * 2.0).sum().item()
    }
}
