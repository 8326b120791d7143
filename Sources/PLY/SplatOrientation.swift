/// Which world axis is up in a written PLY: the one orientation type of every generator's export, the render
/// cameras and the CLI (`--up y|-y`).
public enum SplatOrientation: String, Sendable, CaseIterable {
    /// World -Y up, front towards -Z: TRELLIS's `save_ply` convention, which Competition 0's render service draws
    /// upright (it renders file +Y down). The render cameras see it as the `yUp` cameras would see the splat turned
    /// 180 degrees about X, (x, y, z) -> (x, -y, -z): the azimuth-0 camera sits on -Z and the elevation points
    /// towards -Y. The Competition 0 renderer's azimuth origin is an assumption (its source was not available).
    case yDown = "-y"
    /// World +Y up, front towards +Z: the legacy three-gen-subnet validators (azimuth-0 camera on +Z, +X right).
    case yUp = "y"
}
