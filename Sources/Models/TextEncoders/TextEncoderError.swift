/// Bad input to a text encoder (token ids of the wrong shape, type or range).
public struct TextEncoderError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
