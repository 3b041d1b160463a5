// Router: maps (method, path) to a handler. Pure: Handle(request) -> response, no sockets, so the
// routing table and the handlers can be tested directly.
//
// Patterns are absolute paths whose segments are either literal text or a "{name}" parameter that
// matches exactly one non-empty segment, e.g. "/acme/order/{id}/finalize". Matching is exact (no
// prefix match, a trailing slash matters, no percent-decoding: parameter values are the raw
// segment text). When several routes for the request's method match a path the most specific
// wins: comparing segment by segment from the left, a literal beats a parameter ("/a/new" beats
// "/a/{id}" for "/a/new").
//
// Outcomes of Handle():
//   - a route for the path and method: its handler's response;
//   - HEAD on a path whose GET route was added with `head = true` (and no explicit HEAD route): the
//     GET handler runs, the body is dropped and Content-Length carries the GET body's length (the
//     server sends that header as-is for HEAD requests);
//   - a path that matches but no route for the method: 405 with an `Allow` header listing the
//     path's methods (sorted, HEAD included where served);
//   - no route for the path: 404.
// Error responses are application/problem+json (server/problem.h).
//
// Thread safety: Add() is not thread-safe and must finish before the router is shared; Handle() is
// const and may run concurrently from any number of threads. Handlers run on the caller's thread.
#ifndef E2EID_SERVER_ROUTER_H_
#define E2EID_SERVER_ROUTER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/http.h"

namespace e2eid::server {

// Parameter name -> raw segment text.
using RouteParams = std::map<std::string, std::string, std::less<>>;
using RouteHandler = std::function<HttpResponse(const HttpRequest&, const RouteParams&)>;

struct RouteOptions {
  // For GET routes: also answer HEAD with this handler (body dropped, Content-Length kept).
  bool head = false;
};

class Router {
 public:
  Router() = default;
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;
  Router(Router&&) = default;
  Router& operator=(Router&&) = default;

  // Registers a route. Errors (kInvalidArgument): empty or non-token method, a pattern that does
  // not start with '/', an empty or malformed "{...}" segment, a parameter name used twice in the
  // pattern, `head` on a non-GET route, an empty handler, or a route whose method and pattern
  // shape (literals and parameter positions) are already registered.
  Status Add(std::string_view method, std::string_view pattern, RouteHandler handler,
             RouteOptions options = {});

  // Shorthands for Add(). Same errors.
  Status Get(std::string_view pattern, RouteHandler handler, RouteOptions options = {}) {
    return Add("GET", pattern, std::move(handler), options);
  }
  Status Post(std::string_view pattern, RouteHandler handler) {
    return Add("POST", pattern, std::move(handler));
  }

  // Dispatches on request.method and request.path as described above. A handler that throws is
  // answered with 500 (the exception text is logged, not sent).
  HttpResponse Handle(const HttpRequest& request) const { return Handle(request, nullptr); }
  // The same, also setting `*matched_pattern` (when not null) to the pattern of the route that
  // answered (e.g. "/acme/order/{id}"), or to "" for 404 and 405 answers: a bounded label for
  // metrics, unlike the raw path.
  HttpResponse Handle(const HttpRequest& request, std::string* matched_pattern) const;

  // An HttpHandler calling Handle() on this router, which must outlive it.
  HttpHandler AsHandler() const {
    return [this](const HttpRequest& r) { return Handle(r); };
  }

 private:
  struct Segment {
    bool is_param;
    std::string text;  // literal text or parameter name
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    RouteHandler handler;
    bool head;
  };

  // Whether `route` matches `segments`; fills `params` when it does.
  static bool Match(const Route& route, const std::vector<std::string_view>& segments,
                    RouteParams* params);
  // True when `a` is more specific than `b` (both matching the same path).
  static bool MoreSpecific(const Route& a, const Route& b);

  std::vector<Route> routes_;
};

}  // namespace e2eid::server

#endif  // E2EID_SERVER_ROUTER_H_
