import Foundation
import TorchShim

public struct WorkerPlanError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Which device each serving worker runs on.
public enum WorkerPlan {
    /// Parses a device list: `auto` (every CUDA device, or the CPU when there is none), or a
    /// comma-separated list of `cpu`, `cuda`, `cuda:N`, `gpu` or a bare CUDA index `N`.
    /// A device may be listed twice (two workers on it).
    public static func devices(_ spec: String, cudaDeviceCount: Int) throws -> [Device] {
        let text = spec.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "auto" { return cudaDeviceCount > 0 ? (0..<cudaDeviceCount).map { .cuda($0) } : [.cpu] }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        return try parts.map { part in
            guard !part.isEmpty else { throw WorkerPlanError(message: "empty entry in the device list '\(spec)'") }
            guard let device = Device(part) ?? Int(part).flatMap({ $0 >= 0 ? Device.cuda($0) : nil }) else {
                throw WorkerPlanError(message: "unknown device '\(part)' (use auto, cpu, cuda, cuda:N or N)")
            }
            if case .cuda(let index) = device, index >= cudaDeviceCount {
                throw WorkerPlanError(message: cudaDeviceCount == 0
                    ? "device \(device) was asked for, but no CUDA device is available"
                    : "device \(device) does not exist: this machine has \(cudaDeviceCount) CUDA device(s), "
                    + "cuda:0 to cuda:\(cudaDeviceCount - 1)")
            }
            return device
        }
    }

    /// The device of each of `workers` workers, round-robin over `devices` (worker i runs on
    /// `devices[i % devices.count]`). nil: one worker per listed device.
    public static func assign(workers: Int?, over devices: [Device]) throws -> [Device] {
        guard !devices.isEmpty else { throw WorkerPlanError(message: "no device to run workers on") }
        guard let workers else { return devices }
        guard workers >= 1 else { throw WorkerPlanError(message: "--workers must be at least 1, got \(workers)") }
        return (0..<workers).map { devices[$0 % devices.count] }
    }
}
