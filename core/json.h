// JSON helpers over nlohmann::json that never throw.
//
// ParseJson is strict in the ways that matter for signed protocol messages: duplicate object keys
// are rejected (two parsers must never disagree on what a signed payload says), nesting is bounded,
// and the text must be one complete JSON value. The Get* accessors return kMalformed naming the
// member when it is missing or has the wrong type.
#ifndef E2EID_CORE_JSON_H_
#define E2EID_CORE_JSON_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace e2eid {

using Json = nlohmann::json;

struct JsonLimits {
  size_t max_depth = 32;
};

// `what` names the document in error messages ("JWS protected header").
Result<Json> ParseJson(std::string_view text, std::string_view what = "JSON",
                       JsonLimits limits = {});

// Accessors for required members of an object. Errors: kMalformed "<what>: member 'x' is missing"
// or
// "... must be a string".
Result<std::string> GetString(const Json& obj, std::string_view key,
                              std::string_view what = "JSON");
Result<int64_t> GetInt(const Json& obj, std::string_view key, std::string_view what = "JSON");
Result<bool> GetBool(const Json& obj, std::string_view key, std::string_view what = "JSON");
// Optional members: absent (or null) gives std::nullopt; present with a wrong type is an error.
Result<std::optional<std::string>> GetOptionalString(const Json& obj, std::string_view key,
                                                     std::string_view what = "JSON");
Result<std::optional<int64_t>> GetOptionalInt(const Json& obj, std::string_view key,
                                              std::string_view what = "JSON");
Result<std::optional<bool>> GetOptionalBool(const Json& obj, std::string_view key,
                                            std::string_view what = "JSON");

// Lenient lookups for claims that are checked afterwards: the member's value when `obj` is an
// object and the member is a string (an integer); std::nullopt when absent or of another type.
std::optional<std::string> StringMember(const Json& obj, std::string_view key);
std::optional<int64_t> IntMember(const Json& obj, std::string_view key);

// Serialises without throwing: invalid UTF-8 in strings is replaced by U+FFFD.
std::string DumpJson(const Json& j, int indent = -1);

}  // namespace e2eid

#endif  // E2EID_CORE_JSON_H_
