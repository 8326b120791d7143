/// SHA-1 (FIPS 180-4), streaming. Used only to check git blob ids: the hub lists small
/// (non-LFS) files by their git object id, `sha1("blob <size>\0" + content)`.
public final class SHA1: BlockHash64 {
    private let w = UnsafeMutablePointer<UInt32>.allocate(capacity: 80)
    private var h0: UInt32 = 0x67452301, h1: UInt32 = 0xefcdab89, h2: UInt32 = 0x98badcfe
    private var h3: UInt32 = 0x10325476, h4: UInt32 = 0xc3d2e1f0

    public override init() {
        super.init()
    }

    deinit {
        w.deallocate()
    }

    /// A hasher already fed the git blob header for a file of `size` bytes.
    public static func gitBlob(size: Int64) -> SHA1 {
        let hasher = SHA1()
        hasher.update(Array("blob \(size)".utf8) + [0])
        return hasher
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        let hasher = SHA1()
        hasher.update(bytes)
        return hasher.finalize()
    }

    override func compress(_ block: UnsafeRawPointer) {
        let w = self.w
        for i in 0..<16 {
            w[i] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
        }
        for i in 16..<80 {
            w[i] = rotateLeft(w[i &- 3] ^ w[i &- 8] ^ w[i &- 14] ^ w[i &- 16], 1)
        }
        var a = h0, b = h1, c = h2, d = h3, e = h4
        for i in 0..<80 {
            let f: UInt32, k: UInt32
            switch i {
            case 0..<20: f = (b & c) | (~b & d); k = 0x5a827999
            case 20..<40: f = b ^ c ^ d; k = 0x6ed9eba1
            case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc
            default: f = b ^ c ^ d; k = 0xca62c1d6
            }
            let t = rotateLeft(a, 5) &+ f &+ e &+ k &+ w[i]
            e = d; d = c; c = rotateLeft(b, 30); b = a; a = t
        }
        h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d; h4 &+= e
    }

    override func stateDigest() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(20)
        for word in [h0, h1, h2, h3, h4] {
            out.append(UInt8(truncatingIfNeeded: word >> 24))
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            out.append(UInt8(truncatingIfNeeded: word >> 8))
            out.append(UInt8(truncatingIfNeeded: word))
        }
        return out
    }
}
