import CLIPValidate
import Foundation
import Splatting
import XCTest

final class ValidatorCameraTests: XCTestCase {
    func testDefaultSettingsAreTheValidatorOrbit() {
        let s = RenderSettings()
        XCTAssertEqual(s.viewCount, 16)
        XCTAssertEqual(s.width, 518)
        XCTAssertEqual(s.height, 518)
        XCTAssertEqual(s.thetasDegrees.first, 0)
        XCTAssertEqual(s.thetasDegrees[1], 24)
        XCTAssertEqual(s.thetasDegrees.last, 360)
        XCTAssertEqual(s.phisDegrees, Array(repeating: -15, count: 16))
        XCTAssertEqual(s.radius, 2.5)
        XCTAssertEqual(s.fovYDegrees, 49.1)
        XCTAssertEqual(s.near, 0.01)
        XCTAssertEqual(s.far, 100)
        XCTAssertEqual(s.background, SIMD3(1, 1, 1))
        XCTAssertEqual(s.orientation, .yUp)
        XCTAssertEqual(s.targetExtent, 1.5)
        XCTAssertEqual(RenderSettings.validator(views: 4).thetasDegrees, [0, 120, 240, 360])
    }

    func testLinspaceFollowsNumpy() {
        XCTAssertEqual(RenderSettings.linspace(0, 360, count: 16), (0..<16).map { Double($0) * 24 })
        XCTAssertEqual(RenderSettings.linspace(5, 7, count: 1), [5])
        XCTAssertEqual(RenderSettings.linspace(0, 1, count: 0), [])
        XCTAssertEqual(RenderSettings.linspace(0, 1, count: 3), [0, 0.5, 1])
    }

    /// Matrices of the validator's own torch code (scripts/clipvalidate_oracle.py), evaluated in float64 and rounded to
    /// Float. Tolerance: the validator's float32 computation is <= 2.4e-7 off them, this code <= ~1 ulp (<= 2.4e-7 at
    /// |x| = 2.5), the same with 1 or 2 threads, MKL AVX2 and SSE4_2; 1e-6 is ~4x that.
    func testCamerasMatchTheValidatorsMatrices() throws {
        let cameras = try ValidatorCameras.make(RenderSettings())
        XCTAssertEqual(cameras.count, 16)
        for (v, camera) in cameras.enumerated() {
            let expectedView = Array(ValidatorOracle.viewmats[(16 * v)..<(16 * v + 16)])
            for (got, want) in zip(camera.viewMatrix, expectedView) {
                XCTAssertEqual(got, want, accuracy: 1e-6, "view \(v) matrix")
            }
            XCTAssertEqual(camera.intrinsics, Array(ValidatorOracle.intrinsics[(9 * v)..<(9 * v + 9)]), "view \(v) K")
        }
    }

    func testLastViewRepeatsTheFirst() throws {
        let cameras = try ValidatorCameras.make(RenderSettings())
        for (a, b) in zip(cameras[15].viewMatrix, cameras[0].viewMatrix) {
            XCTAssertEqual(a, b, accuracy: 1e-6)
        }
        XCTAssertNotEqual(cameras[1].viewMatrix, cameras[0].viewMatrix)
    }

    func testCamerasCircleTheOriginFifteenDegreesAbove() throws {
        let settings = RenderSettings()
        let cameras = try ValidatorCameras.make(settings)
        for (camera, theta) in zip(cameras, settings.thetasDegrees) {
            let p = camera.position
            let distance = (p * p).sum().squareRoot()
            XCTAssertEqual(distance, 2.5, accuracy: 1e-5)
            XCTAssertEqual(asin(p.y / distance) * 180 / .pi, 15, accuracy: 1e-3, "elevation")
            var azimuth = Double(atan2(p.x, p.z)) * 180 / .pi
            if azimuth < -1e-3 { azimuth += 360 }
            XCTAssertEqual(azimuth.truncatingRemainder(dividingBy: 360), theta.truncatingRemainder(dividingBy: 360),
                           accuracy: 1e-3, "azimuth")
            let towardOrigin = -p / distance
            XCTAssertEqual((camera.forward * towardOrigin).sum(), 1, accuracy: 1e-6, "looks at the origin")
            XCTAssertGreaterThan(camera.up.y, 0.9, "+Y up")
            XCTAssertEqual(camera.right.y, 0, accuracy: 1e-6, "horizon level")
        }
    }

    func testAzimuthZeroSitsOnPlusZWithPlusXToTheRight() throws {
        let camera = try ValidatorCameras.make(RenderSettings())[0]
        let s = Float(sin(15 * Double.pi / 180)), c = Float(cos(15 * Double.pi / 180))
        XCTAssertEqual(camera.position.x, 0, accuracy: 1e-6)
        XCTAssertEqual(camera.position.y, 2.5 * s, accuracy: 1e-5)
        XCTAssertEqual(camera.position.z, 2.5 * c, accuracy: 1e-5)
        XCTAssertEqual(camera.right.x, 1, accuracy: 1e-6)
        // A point on +X shows right of centre, a point on +Y above it (image y grows downwards).
        XCTAssertGreaterThan(project(SIMD3(0.3, 0, 0), camera).x, 259)
        XCTAssertLessThan(project(SIMD3(0, 0.3, 0), camera).y, 259)
    }

    func testYDownOrientationTurnsTheSplatOverTheXAxis() throws {
        let up = try ValidatorCameras.make(RenderSettings())
        let down = try ValidatorCameras.make(RenderSettings(orientation: .yDown))
        for (a, b) in zip(up, down) {
            let pa = a.position, pb = b.position
            XCTAssertEqual(pb.x, pa.x, accuracy: 1e-5)
            XCTAssertEqual(pb.y, -pa.y, accuracy: 1e-5)
            XCTAssertEqual(pb.z, -pa.z, accuracy: 1e-5)
            XCTAssertLessThan(b.up.y, -0.9, "-Y up")
            // Any world point seen by the yDown camera lands where its X-turned twin lands in the yUp view.
            let point = SIMD3<Float>(0.2, 0.4, -0.1)
            let twin = SIMD3<Float>(point.x, -point.y, -point.z)
            XCTAssertEqual(project(point, b).x, project(twin, a).x, accuracy: 1e-3)
            XCTAssertEqual(project(point, b).y, project(twin, a).y, accuracy: 1e-3)
        }
        XCTAssertGreaterThan(project(SIMD3(0, 0.3, 0), down[0]).y, 259, "+Y shows below centre")
    }

    func testIntrinsicsUseTheIntegerCentre() throws {
        let camera = try ValidatorCameras.make(RenderSettings(width: 517, height: 300, thetasDegrees: [0]))[0]
        XCTAssertEqual(camera.cx, 258)
        XCTAssertEqual(camera.cy, 150)
        let tanHalf = tan(49.1 / 2 * Double.pi / 180)
        XCTAssertEqual(camera.fx, Float(517 / (2 * tanHalf)))
        XCTAssertEqual(camera.fy, Float(300 / (2 * tanHalf)))
        XCTAssertEqual(camera.width, 517)
        XCTAssertEqual(camera.height, 300)
    }

    func testCustomOrbitIsHonoured() throws {
        let settings = RenderSettings(thetasDegrees: [90], phisDegrees: [30], radius: 4)
        let p = try ValidatorCameras.make(settings)[0].position
        XCTAssertEqual(p.x, Float(4 * cos(30 * Double.pi / 180)), accuracy: 1e-5)
        XCTAssertEqual(p.y, -2, accuracy: 1e-5, "positive phi puts the camera below")
        XCTAssertEqual(p.z, 0, accuracy: 1e-5)
    }

    func testInvalidSettingsAreRejected() {
        let bad: [(String, RenderSettings)] = [
            ("phi count", RenderSettings(thetasDegrees: [0, 90], phisDegrees: [-15])),
            ("no views", RenderSettings(thetasDegrees: [])),
            ("zero width", RenderSettings(width: 0)),
            ("negative radius", RenderSettings(radius: -1)),
            ("fov", RenderSettings(fovYDegrees: 180)),
            ("clip planes", RenderSettings(near: 1, far: 0.5)),
            ("NaN angle", RenderSettings(thetasDegrees: [.nan])),
            ("background", RenderSettings(background: SIMD3(.infinity, 0, 0))),
            ("extent", RenderSettings(targetExtent: 0)),
        ]
        for (name, settings) in bad {
            XCTAssertThrowsError(try ValidatorCameras.make(settings), name) { error in
                XCTAssertTrue(error is RenderSettingsError, name)
                XCTAssertFalse("\(error)".isEmpty)
            }
        }
    }

    private func project(_ p: SIMD3<Float>, _ camera: Camera) -> SIMD2<Float> {
        let c = camera.toCamera(p)
        return SIMD2(camera.fx * c.x / c.z + camera.cx, camera.fy * c.y / c.z + camera.cy)
    }
}
