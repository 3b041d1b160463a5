#include "server/router.h"

#include <algorithm>
#include <exception>
#include <set>
#include <string>

#include "core/log.h"
#include "server/problem.h"

namespace e2eid::server {
namespace {

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) { return !s.empty() && std::ranges::all_of(s, IsTokenChar); }

// "/a/b" -> {"a", "b"}; "/" -> {""}. `path` must start with '/'.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

Status Router::Add(std::string_view method, std::string_view pattern, RouteHandler handler,
                   RouteOptions options) {
  const std::string where = "route " + std::string(method) + " " + std::string(pattern);
  if (!IsToken(method)) {
    return Fail(Error::InvalidArgument(where + ": method must be a non-empty HTTP token"));
  }
  if (pattern.empty() || pattern.front() != '/') {
    return Fail(Error::InvalidArgument(where + ": pattern must start with '/'"));
  }
  if (options.head && method != "GET") {
    return Fail(Error::InvalidArgument(where + ": 'head' is only valid on GET routes"));
  }
  if (!handler) return Fail(Error::InvalidArgument(where + ": handler is empty"));

  Route route{std::string(method), std::string(pattern), {}, std::move(handler), options.head};
  std::set<std::string_view> names;
  for (std::string_view seg : SplitPath(pattern)) {
    const bool opens = seg.find('{') != std::string_view::npos;
    const bool closes = seg.find('}') != std::string_view::npos;
    if (!opens && !closes) {
      route.segments.push_back({false, std::string(seg)});
      continue;
    }
    if (seg.size() < 3 || seg.front() != '{' || seg.back() != '}') {
      return Fail(Error::InvalidArgument(where + ": segment '" + std::string(seg) +
                                         "' must be literal text or a whole '{name}'"));
    }
    const std::string_view name = seg.substr(1, seg.size() - 2);
    if (!std::ranges::all_of(name, [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_';
        })) {
      return Fail(Error::InvalidArgument(where + ": parameter name '" + std::string(name) +
                                         "' may only use letters, digits and '_'"));
    }
    if (!names.insert(name).second) {
      return Fail(
          Error::InvalidArgument(where + ": parameter '" + std::string(name) + "' appears twice"));
    }
    route.segments.push_back({true, std::string(name)});
  }

  for (const Route& existing : routes_) {
    if (existing.method != route.method || existing.segments.size() != route.segments.size()) {
      continue;
    }
    bool same_shape = true;
    for (size_t i = 0; i < route.segments.size() && same_shape; ++i) {
      const Segment& a = existing.segments[i];
      const Segment& b = route.segments[i];
      same_shape = a.is_param == b.is_param && (a.is_param || a.text == b.text);
    }
    if (same_shape) {
      return Fail(Error::InvalidArgument(where + ": conflicts with the existing route " +
                                         existing.method + " " + existing.pattern));
    }
  }
  routes_.push_back(std::move(route));
  return Ok();
}

bool Router::Match(const Route& route, const std::vector<std::string_view>& segments,
                   RouteParams* params) {
  if (route.segments.size() != segments.size()) return false;
  params->clear();
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& seg = route.segments[i];
    if (seg.is_param) {
      if (segments[i].empty()) return false;
      params->emplace(seg.text, std::string(segments[i]));
    } else if (seg.text != segments[i]) {
      return false;
    }
  }
  return true;
}

bool Router::MoreSpecific(const Route& a, const Route& b) {
  for (size_t i = 0; i < a.segments.size() && i < b.segments.size(); ++i) {
    if (a.segments[i].is_param != b.segments[i].is_param) return !a.segments[i].is_param;
  }
  return false;
}

HttpResponse Router::Handle(const HttpRequest& request, std::string* matched_pattern) const {
  if (matched_pattern != nullptr) matched_pattern->clear();
  const std::string& path = request.path;
  if (path.empty() || path.front() != '/') {
    return ProblemResponse(Error::NotFound("no resource at '" + path + "'"));
  }
  const std::vector<std::string_view> segments = SplitPath(path);

  const Route* best = nullptr;       // for the request's method
  const Route* best_head = nullptr;  // GET route serving HEAD, used when `best` is null
  bool path_known = false;
  std::set<std::string> allow;
  RouteParams params;
  for (const Route& route : routes_) {
    if (!Match(route, segments, &params)) continue;
    path_known = true;
    allow.insert(route.method);
    if (route.head) allow.insert("HEAD");
    if (route.method == request.method) {
      if (best == nullptr || MoreSpecific(route, *best)) best = &route;
    } else if (request.method == "HEAD" && route.head) {
      if (best_head == nullptr || MoreSpecific(route, *best_head)) best_head = &route;
    }
  }
  if (!path_known) return ProblemResponse(Error::NotFound("no resource at '" + path + "'"));

  const Route* chosen = best != nullptr ? best : best_head;
  if (chosen == nullptr) {
    std::string allow_value;
    for (const std::string& m : allow) {
      if (!allow_value.empty()) allow_value += ", ";
      allow_value += m;
    }
    HttpResponse response =
        ProblemResponse(405, "urn:ietf:params:acme:error:malformed",
                        "method " + request.method + " is not allowed on '" + path + "'");
    response.SetHeader("Allow", allow_value);
    return response;
  }

  Match(*chosen, segments, &params);
  if (matched_pattern != nullptr) *matched_pattern = chosen->pattern;
  HttpResponse response;
  try {
    response = chosen->handler(request, params);
  } catch (const std::exception& e) {
    LogError("route handler threw", {{"route", chosen->method + " " + chosen->pattern},
                                     {"what", e.what()},
                                     {"request_id", request.request_id}});
    return ProblemResponse(Error::Internal("route handler threw"), request.request_id);
  } catch (...) {
    LogError("route handler threw", {{"route", chosen->method + " " + chosen->pattern},
                                     {"what", "non-standard exception"},
                                     {"request_id", request.request_id}});
    return ProblemResponse(Error::Internal("route handler threw"), request.request_id);
  }
  if (chosen == best_head && best == nullptr) {
    response.SetHeader("Content-Length", std::to_string(response.body.size()));
    response.body.clear();
  }
  return response;
}

}  // namespace e2eid::server
