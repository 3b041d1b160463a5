#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace e2eid {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_sink_mutex;
std::function<void(std::string_view)>& Sink() {
  static std::function<void(std::string_view)> sink;
  return sink;
}

std::string NowMillis() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const auto secs = std::chrono::floor<std::chrono::seconds>(now);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd(days);
  const std::chrono::hh_mm_ss hms(secs - days);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02ld.%03ldZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<long>(hms.hours().count()),
                static_cast<long>(hms.minutes().count()), static_cast<long>(hms.seconds().count()),
                static_cast<long>(ms.count() % 1000));
  return buf;
}

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

Result<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return Fail(Error::InvalidArgument("unknown log level '" + std::string(name) +
                                     "' (expected debug, info, warn or error)"));
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

void SetLogSink(std::function<void(std::string_view)> sink) {
  std::lock_guard lock(g_sink_mutex);
  Sink() = std::move(sink);
}

void Log(LogLevel level, std::string_view msg, const Json& fields) {
  if (static_cast<int>(level) < g_level.load()) return;
  // Written member by member (ts, level, msg, then the fields in key order, skipping fields named
  // like the first three) instead of copying everything into a new Json object first.
  std::string text;
  text.reserve(256);
  text += "{\"ts\":\"";
  text += NowMillis();
  text += "\",\"level\":\"";
  text += LogLevelName(level);
  text += "\",\"msg\":";
  text += DumpJson(Json(msg));
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      const std::string& key = it.key();
      if (key == "ts" || key == "level" || key == "msg") continue;
      text += ',';
      text += DumpJson(Json(key));
      text += ':';
      text += DumpJson(it.value());
    }
  }
  text += '}';
  std::lock_guard lock(g_sink_mutex);
  if (Sink()) {
    Sink()(text);
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
}

}  // namespace e2eid
