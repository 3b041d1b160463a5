#include "server/acme_routes.h"

#include <string>
#include <utility>

#include "server/problem.h"

namespace e2eid::server {
namespace {

std::string Path(std::string_view prefix, std::string_view rest) {
  return std::string(prefix) + std::string(rest);
}

// A route handler calling `fn(engine, request, params)` and rendering its reply.
template <typename Fn>
RouteHandler Wrap(const acme::Engine& engine, Fn fn) {
  return [&engine, fn](const HttpRequest& request, const RouteParams& params) {
    return RenderAcmeReply(fn(engine, request, params), request.request_id);
  };
}

std::string_view Param(const RouteParams& params, std::string_view name) {
  auto it = params.find(name);
  return it == params.end() ? std::string_view() : std::string_view(it->second);
}

}  // namespace

HttpResponse RenderAcmeReply(acme::AcmeReply reply, std::string_view request_id) {
  HttpResponse response =
      reply.result ? std::move(*reply.result) : ProblemResponse(reply.result.error(), request_id);
  for (auto& [name, value] : reply.headers) response.AddHeader(name, std::move(value));
  return response;
}

Json AcmeProblemDocument(const Error& error) {
  HttpResponse r = ProblemResponse(error);
  auto doc = ParseJson(r.body, "problem document");
  if (!doc) return Json{{"type", "urn:ietf:params:acme:error:serverInternal"}};
  return std::move(*doc);
}

Status AddDeviceAuthorityRoutes(Router& router, const acme::DeviceAuthority& authority) {
  auto render = [](Result<HttpResponse> r, const HttpRequest& request) {
    return r ? std::move(*r) : ProblemResponse(r.error(), request.request_id);
  };
  RouteHandler nonce = [&authority, render](const HttpRequest& r, const RouteParams& p) {
    return render(authority.HandleNonce(r, Param(p, "device")), r);
  };
  E2EID_CHECK_OK(router.Get(Path(acme::kClientsPathPrefix, "{device}/nonce"), nonce));
  E2EID_CHECK_OK(router.Add("HEAD", Path(acme::kClientsPathPrefix, "{device}/nonce"), nonce));
  return router.Post(Path(acme::kClientsPathPrefix, "{device}/access-token"),
                     [&authority, render](const HttpRequest& r, const RouteParams& p) {
                       return render(authority.HandleAccessToken(r, Param(p, "device")), r);
                     });
}

Status AddAcmeRoutes(Router& router, const acme::Engine& engine) {
  using acme::Engine;
  E2EID_CHECK_OK(router.Get(acme::kDirectoryPath,
                            Wrap(engine, [](const Engine& e, const HttpRequest& r,
                                            const RouteParams&) { return e.HandleDirectory(r); }),
                            {.head = true}));
  auto nonce = Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams&) {
    return e.HandleNewNonce(r);
  });
  E2EID_CHECK_OK(router.Get(acme::kNewNoncePath, nonce));
  E2EID_CHECK_OK(router.Add("HEAD", acme::kNewNoncePath, nonce));
  E2EID_CHECK_OK(
      router.Get(Path(acme::kRenewalInfoPath, "/{id}"),
                 Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams& p) {
                   return e.HandleRenewalInfo(r, Param(p, "id"));
                 })));

  E2EID_CHECK_OK(
      router.Post(acme::kNewAccountPath,
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams&) {
                    return e.HandleNewAccount(r);
                  })));
  E2EID_CHECK_OK(
      router.Post(Path(acme::kAccountPathPrefix, "{id}"),
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams& p) {
                    return e.HandleAccount(r, Param(p, "id"));
                  })));
  E2EID_CHECK_OK(
      router.Post(Path(acme::kAccountPathPrefix, "{id}/orders"),
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams& p) {
                    return e.HandleAccountOrders(r, Param(p, "id"));
                  })));
  E2EID_CHECK_OK(router.Post(acme::kNewOrderPath,
                             Wrap(engine, [](const Engine& e, const HttpRequest& r,
                                             const RouteParams&) { return e.HandleNewOrder(r); })));
  E2EID_CHECK_OK(
      router.Post(Path(acme::kOrderPathPrefix, "{id}"),
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams& p) {
                    return e.HandleOrder(r, Param(p, "id"));
                  })));
  E2EID_CHECK_OK(
      router.Post(Path(acme::kOrderPathPrefix, "{id}/finalize"),
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams& p) {
                    return e.HandleFinalize(r, Param(p, "id"));
                  })));
  E2EID_CHECK_OK(
      router.Post(Path(acme::kAuthzPathPrefix, "{id}"),
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams& p) {
                    return e.HandleAuthorization(r, Param(p, "id"));
                  })));
  E2EID_CHECK_OK(
      router.Post(Path(acme::kChallengePathPrefix, "{id}"),
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams& p) {
                    return e.HandleChallenge(r, Param(p, "id"));
                  })));
  E2EID_CHECK_OK(
      router.Post(Path(acme::kCertificatePathPrefix, "{serial}"),
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams& p) {
                    return e.HandleCertificate(r, Param(p, "serial"));
                  })));
  E2EID_CHECK_OK(
      router.Post(acme::kRevokeCertPath,
                  Wrap(engine, [](const Engine& e, const HttpRequest& r, const RouteParams&) {
                    return e.HandleRevokeCert(r);
                  })));
  E2EID_CHECK_OK(router.Post(
      acme::kKeyChangePath, Wrap(engine, [](const Engine& e, const HttpRequest& r,
                                            const RouteParams&) { return e.HandleKeyChange(r); })));
  return Ok();
}

}  // namespace e2eid::server
