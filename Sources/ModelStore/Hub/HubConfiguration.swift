import Foundation

/// Where the hub is, who we are, where the cache lives: resolved from the same environment variables
/// huggingface_hub reads, so both tools share one cache and one login.
public struct HubConfiguration: Sendable, Equatable {
    public static let defaultEndpoint = "https://huggingface.co"

    /// Base URL of the hub, without a trailing slash (HF_ENDPOINT).
    public var endpoint: String
    /// Bearer token (HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the token file).
    public var token: String?
    /// Where the token came from, for messages ("HF_TOKEN", a file path); nil without a token.
    public var tokenSource: String?
    /// Never touch the network (HF_HUB_OFFLINE=1).
    public var offline: Bool
    /// The hub cache root: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    public var cacheDirectory: String
    /// Files downloaded at once.
    public var parallelDownloads: Int = 4
    /// Retries of one file after a cut or failed transfer (each resumes where the last stopped).
    public var maxRetries: Int = 5
    /// First retry delay in seconds; doubles on each retry.
    public var retryBaseDelay: Double = 1.0
    public var connectTimeoutSeconds: Int = 30
    /// A transfer slower than `lowSpeedBytesPerSecond` for `lowSpeedSeconds` is aborted and resumed.
    public var lowSpeedBytesPerSecond: Int = 1024
    public var lowSpeedSeconds: Int = 60
    public var userAgent: String = "gen3d-modelstore/1.0"
    /// Hosts that bypass any proxy (CURLOPT_NOPROXY, from no_proxy / NO_PROXY of the given environment);
    /// nil leaves libcurl's own reading. The proxies themselves come from the process environment
    /// (http_proxy, https_proxy / HTTPS_PROXY, all_proxy), which libcurl reads on every transfer.
    public var noProxy: String?

    public init(endpoint: String = HubConfiguration.defaultEndpoint, token: String? = nil, tokenSource: String? = nil,
                offline: Bool = false, cacheDirectory: String) {
        self.endpoint = HubConfiguration.trimmedEndpoint(endpoint)
        self.token = token
        self.tokenSource = token == nil ? nil : (tokenSource ?? "configuration")
        self.offline = offline
        self.cacheDirectory = cacheDirectory
    }

    /// Reads HF_ENDPOINT, HF_TOKEN / HUGGING_FACE_HUB_TOKEN / HF_TOKEN_PATH / $HF_HOME/token,
    /// HF_HUB_OFFLINE, HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME.
    public static func fromEnvironment(_ environment: [String: String]) -> HubConfiguration {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let hfHome = nonEmpty(environment["HF_HOME"])
            ?? ((nonEmpty(environment["XDG_CACHE_HOME"]) ?? home + "/.cache") + "/huggingface")
        let cache = nonEmpty(environment["HF_HUB_CACHE"]) ?? nonEmpty(environment["HUGGINGFACE_HUB_CACHE"]) ?? hfHome + "/hub"

        var token: String?
        var tokenSource: String?
        if let value = nonEmpty(environment["HF_TOKEN"]) {
            token = value; tokenSource = "HF_TOKEN"
        } else if let value = nonEmpty(environment["HUGGING_FACE_HUB_TOKEN"]) {
            token = value; tokenSource = "HUGGING_FACE_HUB_TOKEN"
        } else {
            let path = nonEmpty(environment["HF_TOKEN_PATH"]) ?? hfHome + "/token"
            if let data = FileManager.default.contents(atPath: path),
               let value = nonEmpty(String(decoding: data, as: UTF8.self)) {
                token = value; tokenSource = path
            }
        }

        var configuration = HubConfiguration(
            endpoint: nonEmpty(environment["HF_ENDPOINT"]) ?? defaultEndpoint,
            token: token, tokenSource: tokenSource,
            offline: isTrue(environment["HF_HUB_OFFLINE"]),
            cacheDirectory: cache)
        configuration.tokenSource = tokenSource
        configuration.noProxy = nonEmpty(environment["no_proxy"]) ?? nonEmpty(environment["NO_PROXY"])
        return configuration
    }

    static func trimmedEndpoint(_ endpoint: String) -> String {
        var value = endpoint
        while value.hasSuffix("/") { value.removeLast() }
        return value
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let trimmed = value?.trimmingCharacters(in: .whitespacesAndNewlines), !trimmed.isEmpty else { return nil }
        return trimmed
    }

    private static func isTrue(_ value: String?) -> Bool {
        guard let value = value?.trimmingCharacters(in: .whitespaces).lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(value)
    }
}
