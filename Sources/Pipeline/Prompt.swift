import Imaging

/// What the user asked for: a text prompt or an image prompt.
public enum Prompt {
    case text(String)
    case image(Image)

    public var kind: String {
        switch self {
        case .text: return "text"
        case .image: return "image"
        }
    }
}
