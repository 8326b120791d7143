import Foundation

/// Counts the multiply-add work of the dense ops (linear, convolution, matmul/bmm, scaled-dot-product attention) issued
/// while `count` runs, from shapes alone (no device sync), for benchmarks' achieved TFLOP/s. One multiply-add = 2 FLOP.
/// Element-wise ops, norms and gathers are not counted (they are memory-bound and small next to the GEMMs).
public enum FLOPCounter {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var depth = 0
    nonisolated(unsafe) private static var total = 0.0

    /// Runs `body` and returns its value with the FLOPs of the counted ops it issued.
    public static func count<T>(_ body: () throws -> T) rethrows -> (value: T, flops: Double) {
        lock.lock(); depth += 1; let start = total; lock.unlock()
        defer { lock.lock(); depth -= 1; lock.unlock() }
        let value = try body()
        lock.lock(); let flops = total - start; lock.unlock()
        return (value, flops)
    }

    @inline(__always) static var isCounting: Bool { depth > 0 }

    static func add(_ flops: Double) {
        lock.lock(); total += flops; lock.unlock()
    }

    /// Convolution: each output element costs (input channels / groups) x kernel volume multiply-adds (transposed
    /// convolutions are counted over the input elements).
    static func convolution(output: Tensor, input: Tensor, weight: Tensor, transposed: Bool) {
        let kernel = weight.shape.dropFirst().reduce(1, *)  // [Cout, Cin/g, k...] or transposed [Cin, Cout/g, k...]
        add(2 * Double(transposed ? input.count : output.count) * Double(kernel))
    }
}
