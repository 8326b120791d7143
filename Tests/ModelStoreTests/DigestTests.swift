import XCTest
@testable import ModelStore

final class DigestTests: XCTestCase {
    private func sha256(_ text: String) -> String {
        hexString(SHA256.hash(Array(text.utf8)))
    }

    private func sha1(_ text: String) -> String {
        hexString(SHA1.hash(Array(text.utf8)))
    }

    // FIPS 180-4 / NIST example vectors.
    func testSHA256Vectors() {
        XCTAssertEqual(sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(sha256("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    func testSHA256MillionA() {
        let hasher = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { hasher.update(chunk) }
        XCTAssertEqual(hasher.finalizeHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA1Vectors() {
        XCTAssertEqual(sha1(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(sha1("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

    /// `git hash-object` of a file containing "hello\n" is ce013625030ba8dba906f756967f9e9ca394464a.
    func testGitBlobID() {
        let hasher = SHA1.gitBlob(size: 6)
        hasher.update("hello\n")
        XCTAssertEqual(hasher.finalizeHex(), "ce013625030ba8dba906f756967f9e9ca394464a")
        let empty = SHA1.gitBlob(size: 0)
        XCTAssertEqual(empty.finalizeHex(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
    }

    /// Feeding the same bytes in pieces of every awkward size around the block boundary gives the same digest.
    func testStreamingMatchesOneShot() {
        var generator = SplitMix64(seed: 7)
        let data = (0..<10_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let expected256 = hexString(SHA256.hash(data))
        let expected1 = hexString(SHA1.hash(data))
        for piece in [1, 3, 55, 56, 63, 64, 65, 127, 128, 1000, 4096] {
            let a = SHA256(), b = SHA1()
            var offset = 0
            while offset < data.count {
                let end = min(offset + piece, data.count)
                a.update(Array(data[offset..<end]))
                b.update(Array(data[offset..<end]))
                offset = end
            }
            XCTAssertEqual(a.finalizeHex(), expected256, "piece \(piece)")
            XCTAssertEqual(b.finalizeHex(), expected1, "piece \(piece)")
        }
        // Lengths around the padding boundary (55, 56, 64 bytes) against the one-shot path of a second hasher.
        for length in [55, 56, 57, 63, 64, 65, 119, 120] {
            let bytes = Array(data.prefix(length))
            let streamed = SHA256()
            bytes.forEach { streamed.update([$0]) }
            XCTAssertEqual(streamed.finalizeHex(), hexString(SHA256.hash(bytes)), "length \(length)")
        }
    }

    func testFileDigestStreamsWholeFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/blob"
        var generator = SplitMix64(seed: 3)
        let data = Data((0..<(9 << 20) + 17).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
        try data.write(to: URL(fileURLWithPath: path))
        let expected = hexString(SHA256.hash(Array(data)))
        XCTAssertEqual(try FileHashing.digest(ofFileAt: path, like: .sha256(expected)), expected)
    }
}
