#include "core/json.h"

#include <set>
#include <vector>

namespace e2eid {

Result<Json> ParseJson(std::string_view text, std::string_view what, JsonLimits limits) {
  // Each open object gets a set of the keys seen so far; a key seen twice marks the document
  // invalid.
  std::vector<std::set<std::string>> keys;
  size_t depth = 0;
  std::string problem;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) -> bool {
    switch (event) {
      case Json::parse_event_t::object_start:
        keys.emplace_back();
        [[fallthrough]];
      case Json::parse_event_t::array_start:
        if (++depth > limits.max_depth && problem.empty()) {
          problem = "nesting deeper than " + std::to_string(limits.max_depth);
        }
        break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        [[fallthrough]];
      case Json::parse_event_t::array_end:
        if (depth > 0) --depth;
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string()) {
          if (!keys.back().insert(parsed.get_ref<const std::string&>()).second && problem.empty()) {
            problem = "duplicate member '" + parsed.get<std::string>() + "'";
          }
        }
        break;
      case Json::parse_event_t::value:
        break;
    }
    return true;
  };
  Json j = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false,
                       /*ignore_comments=*/false);
  if (j.is_discarded()) {
    return Fail(Error::Malformed(std::string(what) + " is not valid JSON"));
  }
  if (!problem.empty()) {
    return Fail(Error::Malformed(std::string(what) + ": " + problem));
  }
  return j;
}

namespace {

Result<const Json*> Member(const Json& obj, std::string_view key, std::string_view what) {
  if (!obj.is_object()) return Fail(Error::Malformed(std::string(what) + " must be a JSON object"));
  auto it = obj.find(key);
  if (it == obj.end()) {
    return Fail(
        Error::Malformed(std::string(what) + ": member '" + std::string(key) + "' is missing"));
  }
  return &*it;
}

Error WrongType(std::string_view key, std::string_view what, std::string_view type) {
  return Error::Malformed(std::string(what) + ": member '" + std::string(key) + "' must be " +
                          std::string(type));
}

const Json* OptionalMember(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

Result<std::string> GetString(const Json& obj, std::string_view key, std::string_view what) {
  E2EID_TRY(m, Member(obj, key, what));
  if (!m->is_string()) return Fail(WrongType(key, what, "a string"));
  return m->get<std::string>();
}

Result<int64_t> GetInt(const Json& obj, std::string_view key, std::string_view what) {
  E2EID_TRY(m, Member(obj, key, what));
  if (!m->is_number_integer()) return Fail(WrongType(key, what, "an integer"));
  return m->get<int64_t>();
}

Result<bool> GetBool(const Json& obj, std::string_view key, std::string_view what) {
  E2EID_TRY(m, Member(obj, key, what));
  if (!m->is_boolean()) return Fail(WrongType(key, what, "a boolean"));
  return m->get<bool>();
}

Result<std::optional<std::string>> GetOptionalString(const Json& obj, std::string_view key,
                                                     std::string_view what) {
  if (!obj.is_object()) return Fail(Error::Malformed(std::string(what) + " must be a JSON object"));
  const Json* m = OptionalMember(obj, key);
  if (m == nullptr) return std::optional<std::string>();
  if (!m->is_string()) return Fail(WrongType(key, what, "a string"));
  return std::optional<std::string>(m->get<std::string>());
}

Result<std::optional<int64_t>> GetOptionalInt(const Json& obj, std::string_view key,
                                              std::string_view what) {
  if (!obj.is_object()) return Fail(Error::Malformed(std::string(what) + " must be a JSON object"));
  const Json* m = OptionalMember(obj, key);
  if (m == nullptr) return std::optional<int64_t>();
  if (!m->is_number_integer()) return Fail(WrongType(key, what, "an integer"));
  return std::optional<int64_t>(m->get<int64_t>());
}

Result<std::optional<bool>> GetOptionalBool(const Json& obj, std::string_view key,
                                            std::string_view what) {
  if (!obj.is_object()) return Fail(Error::Malformed(std::string(what) + " must be a JSON object"));
  const Json* m = OptionalMember(obj, key);
  if (m == nullptr) return std::optional<bool>();
  if (!m->is_boolean()) return Fail(WrongType(key, what, "a boolean"));
  return std::optional<bool>(m->get<bool>());
}

std::optional<std::string> StringMember(const Json& obj, std::string_view key) {
  const Json* m = OptionalMember(obj, key);
  if (m == nullptr || !m->is_string()) return std::nullopt;
  return m->get<std::string>();
}

std::optional<int64_t> IntMember(const Json& obj, std::string_view key) {
  const Json* m = OptionalMember(obj, key);
  if (m == nullptr || !m->is_number_integer()) return std::nullopt;
  return m->get<int64_t>();
}

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

}  // namespace e2eid
