import Foundation

/// The parts of a transformers `tokenizer_config.json` (+ `special_tokens_map.json`) a tokenizer needs.
struct HFTokenizerConfig {
    /// Role ("bos_token", "pad_token", ...) -> token; `id` is -1 unless `added_tokens_decoder` gives it.
    var specialTokens: [String: AddedToken] = [:]
    /// `added_tokens_decoder` entries, with their ids and flags.
    var addedTokens: [AddedToken] = []
    var modelMaxLength: Int?

    /// - Parameter defaults: role -> content for roles neither file sets.
    init(config: URL?, specialTokensMap: URL?, defaults: [String: String]) throws {
        var configObject: [String: Any] = [:]
        if let config {
            guard let object = try readJSON(config) as? [String: Any] else {
                throw TokenizerError.malformed(what: config.lastPathComponent, reason: "not a JSON object")
            }
            configObject = object
        }
        if let decoder = configObject["added_tokens_decoder"] {
            guard let entries = decoder as? [String: Any] else {
                throw TokenizerError.malformed(what: "added_tokens_decoder", reason: "not an object of id -> token")
            }
            for (key, value) in entries {
                guard let id = Int32(key), var token = try Self.token(value, what: "added_tokens_decoder[\(key)]") else {
                    throw TokenizerError.malformed(what: "added_tokens_decoder", reason: "entry \(key.debugDescription)")
                }
                token.id = id
                addedTokens.append(token)
            }
            addedTokens.sort { $0.id < $1.id }
        }
        for role in defaults.keys {
            if let value = configObject[role], let token = try Self.token(value, what: role) {
                specialTokens[role] = token
            }
        }
        // transformers 5 (tokenization_utils_base): special_tokens_map.json is merged over the config's
        // values only when the config has no added_tokens_decoder.
        if let specialTokensMap, configObject["added_tokens_decoder"] == nil {
            guard let map = try readJSON(specialTokensMap) as? [String: Any] else {
                throw TokenizerError.malformed(what: specialTokensMap.lastPathComponent, reason: "not a JSON object")
            }
            for role in defaults.keys {
                if let value = map[role], let token = try Self.token(value, what: role) { specialTokens[role] = token }
            }
        }
        for (role, content) in defaults where specialTokens[role] == nil {
            specialTokens[role] = AddedToken(content: content, id: -1)
        }
        // A role naming an added_tokens_decoder entry shares its id and flags.
        for (role, token) in specialTokens {
            if let added = addedTokens.first(where: { $0.content == token.content }) { specialTokens[role] = added }
        }
        if let value = configObject["model_max_length"] as? NSNumber {
            let number = value.doubleValue
            modelMaxLength = number.isFinite && abs(number) < 1e15 ? Int(number) : nil
        }
    }

    /// A special token as the config stores it: a string or a serialised AddedToken (nil for JSON null).
    static func token(_ value: Any, what: String) throws -> AddedToken? {
        if value is NSNull { return nil }
        if let content = value as? String { return AddedToken(content: content, id: -1) }
        guard let object = value as? [String: Any], let content = object["content"] as? String else {
            throw TokenizerError.malformed(what: what, reason: "neither a string nor an object with \"content\"")
        }
        func flag(_ key: String, _ fallback: Bool) -> Bool { (object[key] as? Bool) ?? fallback }
        return AddedToken(content: content, id: -1, normalized: flag("normalized", false), lstrip: flag("lstrip", false),
                          rstrip: flag("rstrip", false), singleWord: flag("single_word", false))
    }
}
