// TorchShim: Swift Tensor API over the C shim.
