/// How a text prompt reaches the 3D generator.
public enum TextRoute: String, Sendable, CaseIterable {
    /// FLUX.1-schnell -> background removal -> the image -> 3D generator (TRELLIS or LGM via ImageDream).
    case flux
    /// MVDream draws four views from the text -> LGM (LGM only; the reference app's text mode).
    case mvdream
}
