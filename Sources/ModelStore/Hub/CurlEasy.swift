import CCurl
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// libcurl's global set-up, once. SIGPIPE is ignored process-wide: with CURLOPT_NOSIGNAL (needed with
/// several transfer threads) libcurl does not mask it, and a peer closing a TLS connection mid-write
/// would otherwise kill the process.
private let curlGlobalInit: CURLcode = {
    signal(SIGPIPE, SIG_IGN)
    return ccurl_global_init_default()
}()

/// One libcurl easy handle: options, one transfer at a time, and the response of its last hop.
/// A handle is reused for many transfers (keeping connections alive) by one thread at a time.
final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    private var headerList: UnsafeMutablePointer<curl_slist>?

    init() throws {
        guard curlGlobalInit == CURLE_OK else {
            throw ModelStoreError.transport(url: "", code: Int(curlGlobalInit.rawValue), message: "curl_global_init failed")
        }
        guard let handle = curl_easy_init() else {
            throw ModelStoreError.transport(url: "", code: -1, message: "curl_easy_init failed")
        }
        self.handle = handle
    }

    deinit {
        curl_easy_cleanup(handle)
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    /// Runs one GET of `url` and feeds the exchange. Returns libcurl's result code; HTTP statuses are in
    /// `exchange` (libcurl does not fail on them here).
    func perform(url: String, exchange: HTTPExchange, configuration: HubConfiguration, sendToken: Bool,
                 range: Int64?, timeoutSeconds: Int?, acceptCompressed: Bool) -> CURLcode {
        curl_easy_reset(handle)
        if let old = headerList {
            curl_slist_free_all(old)
            headerList = nil
        }
        errorBuffer.initialize(to: 0)
        var headers: [String] = []
        if sendToken, let token = configuration.token {
            // A custom Authorization header is only sent to the host (and port) of the first request:
            // libcurl drops it on a redirect to another host while CURLOPT_UNRESTRICTED_AUTH is off
            // (the default), so CDN URLs never see the token. The test suite checks this.
            headers.append("Authorization: Bearer \(token)")
        }
        for line in headers { headerList = curl_slist_append(headerList, line) }

        _ = ccurl_setopt_string(handle, CURLOPT_URL, url)
        _ = ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        _ = ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1)
        _ = ccurl_setopt_long(handle, CURLOPT_MAXREDIRS, 10)
        _ = ccurl_setopt_long(handle, CURLOPT_UNRESTRICTED_AUTH, 0)
        _ = ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, configuration.connectTimeoutSeconds)
        _ = ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, configuration.lowSpeedBytesPerSecond)
        _ = ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, configuration.lowSpeedSeconds)
        if let timeoutSeconds { _ = ccurl_setopt_long(handle, CURLOPT_TIMEOUT, timeoutSeconds) }
        _ = ccurl_setopt_string(handle, CURLOPT_USERAGENT, configuration.userAgent)
        // Only for small API answers: a compressed file body would break byte ranges and sizes.
        if acceptCompressed { _ = ccurl_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "") }
        if let noProxy = configuration.noProxy { _ = ccurl_setopt_string(handle, CURLOPT_NOPROXY, noProxy) }
        if let headerList { _ = ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList) }
        if let range, range > 0 { _ = ccurl_setopt_string(handle, CURLOPT_RANGE, "\(range)-") }
        _ = ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer))

        let context = Unmanaged.passUnretained(exchange).toOpaque()
        _ = ccurl_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION, headerCallback)
        _ = ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
        _ = ccurl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, writeCallback)
        _ = ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        _ = ccurl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
        _ = ccurl_setopt_xferinfo_callback(handle, progressCallback)
        _ = ccurl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)

        return withExtendedLifetime(exchange) { curl_easy_perform(handle) }
    }

    /// libcurl's message for the last failed transfer.
    func errorMessage(for code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        return detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
    }
}

/// Receives one HTTP exchange (all hops of a redirect chain) from libcurl's callbacks.
/// The headers kept are those of the last response; the body handler sees only the final body.
class HTTPExchange {
    private(set) var status = 0
    private(set) var headers: [String: String] = [:]
    private var bodyStarted = false
    /// Set from another thread to abort the transfer at the next progress callback.
    let cancellation: CancellationFlag

    init(cancellation: CancellationFlag) {
        self.cancellation = cancellation
    }

    /// Called once before the first body byte (after the final response's headers). False aborts.
    func bodyWillStart(status: Int, headers: [String: String]) -> Bool { true }

    /// Called with each piece of the body. False aborts the transfer.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool { true }

    fileprivate func headerLine(_ line: String) {
        if line.hasPrefix("HTTP/") {
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            headers = [:]
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        headers[name] = value
    }

    fileprivate func body(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if !bodyStarted {
            bodyStarted = true
            if !bodyWillStart(status: status, headers: headers) { return false }
        }
        return receive(bytes)
    }
}

/// A thread-safe flag that aborts transfers when set.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }

    func cancel() {
        lock.lock(); cancelled = true; lock.unlock()
    }
}

private let headerCallback: ccurl_data_callback = { data, size, count, context in
    let length = size * count
    guard let data, let context else { return length }
    let exchange = Unmanaged<HTTPExchange>.fromOpaque(context).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    exchange.headerLine(line)
    return length
}

private let writeCallback: ccurl_data_callback = { data, size, count, context in
    let length = size * count
    guard let data, let context else { return 0 }
    let exchange = Unmanaged<HTTPExchange>.fromOpaque(context).takeUnretainedValue()
    return exchange.body(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
}

private let progressCallback: curl_xferinfo_callback = { context, _, _, _, _ in
    guard let context else { return 0 }
    let exchange = Unmanaged<HTTPExchange>.fromOpaque(context).takeUnretainedValue()
    return exchange.cancellation.isCancelled ? 1 : 0
}
