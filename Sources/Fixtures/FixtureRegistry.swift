/// Every fixture class with a Swift implementation. Each model family adds its handlers here
/// (one line per family; the handlers live beside the family's other self-test code).
public enum FixtureRegistry {
    public static var handlers: [String: FixtureHandler] {
        var all: [String: FixtureHandler] = [:]
        for family in families {
            all.merge(family) { first, _ in first }
        }
        return all
    }

    static let families: [[String: FixtureHandler]] = [
        FluxFixtures.handlers,
        TrellisSparseFixtures.handlers,
        TrellisPipelineFixtures.handlers,
        TrellisDenseFixtures.handlers,
        BiRefNetFixtures.handlers,
        ValidatorFixtures.handlers,
        LGMFixtures.handlers,
    ]

    public static var scanners: [FixtureScanner] {
        [
            BiRefNetFixtures.scan,
        ]
    }
}
