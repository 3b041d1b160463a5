// Structured logging: one JSON object per line, {"ts":..., "level":..., "msg":..., <fields>}.
//
// Thread-safe. The sink defaults to stderr; tests may install their own. Never pass secrets
// (private keys, tokens, passphrases) as fields: there is no redaction layer, by design the callers
// do not hand them over.
#ifndef E2EID_CORE_LOG_H_
#define E2EID_CORE_LOG_H_

#include <functional>
#include <string>
#include <string_view>

#include "core/json.h"

namespace e2eid {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

std::string_view LogLevelName(LogLevel level);
// Accepts "debug", "info", "warn"/"warning", "error".
Result<LogLevel> ParseLogLevel(std::string_view name);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Replaces the line sink (receives one complete JSON line without the trailing newline). Passing an
// empty function restores stderr.
void SetLogSink(std::function<void(std::string_view line)> sink);

// Writes a line when `level` is at or above the configured level. `fields` must be a JSON object
// (or null); its members are added beside ts/level/msg.
void Log(LogLevel level, std::string_view msg, const Json& fields = nullptr);

inline void LogDebug(std::string_view msg, const Json& f = nullptr) {
  Log(LogLevel::kDebug, msg, f);
}
inline void LogInfo(std::string_view msg, const Json& f = nullptr) { Log(LogLevel::kInfo, msg, f); }
inline void LogWarn(std::string_view msg, const Json& f = nullptr) { Log(LogLevel::kWarn, msg, f); }
inline void LogError(std::string_view msg, const Json& f = nullptr) {
  Log(LogLevel::kError, msg, f);
}

}  // namespace e2eid

#endif  // E2EID_CORE_LOG_H_
