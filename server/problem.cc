#include "server/problem.h"

#include <string>

#include "core/json.h"
#include "core/log.h"

namespace e2eid::server {
namespace {

constexpr std::string_view kAcmeErrorPrefix = "urn:ietf:params:acme:error:";

// Client-facing detail: internal codes get a generic message.
std::string ClientDetail(ErrorCode code, const std::string& detail) {
  if (code == ErrorCode::kUnavailable) return "the service is temporarily unavailable, retry later";
  if (!IsClientFacing(code)) return "internal server error";
  return detail;
}

}  // namespace

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnauthorized:
    case ErrorCode::kForbidden:
    case ErrorCode::kCaa:
    case ErrorCode::kOrderNotReady:
    case ErrorCode::kUserActionRequired:
      return 403;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kAlreadyReplaced:
      return 409;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMediaType:
      return 415;
    case ErrorCode::kRateLimited:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kServerInternal:
    case ErrorCode::kInternal:
    case ErrorCode::kIo:
    case ErrorCode::kStore:
    case ErrorCode::kCrypto:
    case ErrorCode::kConfig:
      return 500;
    case ErrorCode::kAccountDoesNotExist:
    case ErrorCode::kAlreadyRevoked:
    case ErrorCode::kBadCsr:
    case ErrorCode::kBadNonce:
    case ErrorCode::kBadPublicKey:
    case ErrorCode::kBadRevocationReason:
    case ErrorCode::kBadSignatureAlgorithm:
    case ErrorCode::kCompound:
    case ErrorCode::kConnection:
    case ErrorCode::kDns:
    case ErrorCode::kExternalAccountRequired:
    case ErrorCode::kIncorrectResponse:
    case ErrorCode::kInvalidContact:
    case ErrorCode::kMalformed:
    case ErrorCode::kRejectedIdentifier:
    case ErrorCode::kTls:
    case ErrorCode::kUnsupportedContact:
    case ErrorCode::kUnsupportedIdentifier:
    case ErrorCode::kInvalidArgument:
      return 400;
  }
  return 500;
}

std::string ProblemTypeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
    case ErrorCode::kConflict:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kPayloadTooLarge:
    case ErrorCode::kUnsupportedMediaType:
      return std::string(kAcmeErrorPrefix) + "malformed";
    case ErrorCode::kForbidden:
    case ErrorCode::kUnauthenticated:
      return std::string(kAcmeErrorPrefix) + "unauthorized";
    default:
      break;
  }
  if (!IsClientFacing(code)) return std::string(kAcmeErrorPrefix) + "serverInternal";
  return std::string(kAcmeErrorPrefix) + std::string(ErrorCodeName(code));
}

HttpResponse ProblemResponse(const Error& error, std::string_view request_id) {
  const ErrorCode code = error.code();
  if (!IsClientFacing(code)) {
    Json fields = {{"code", ErrorCodeName(code)}, {"error", error.ToString()}};
    if (!request_id.empty()) fields["request_id"] = request_id;
    LogError("request failed with an internal error", fields);
  }
  const int status = HttpStatusFor(code);
  Json doc = {{"type", ProblemTypeFor(code)},
              {"detail", ClientDetail(code, error.detail())},
              {"status", status}};
  if (!error.subproblems().empty()) {
    Json subs = Json::array();
    for (const auto& s : error.subproblems()) {
      Json sub = {{"type", ProblemTypeFor(s.code)}, {"detail", ClientDetail(s.code, s.detail)}};
      if (!s.identifier_type.empty() || !s.identifier_value.empty()) {
        sub["identifier"] = {{"type", s.identifier_type}, {"value", s.identifier_value}};
      }
      subs.push_back(std::move(sub));
    }
    doc["subproblems"] = std::move(subs);
  }
  HttpResponse response =
      HttpResponse::WithBody(status, std::string(kProblemContentType), DumpJson(doc));
  if (error.retry_after().has_value() && error.retry_after()->count() >= 0) {
    response.SetHeader("Retry-After", std::to_string(error.retry_after()->count()));
  }
  return response;
}

HttpResponse ProblemResponse(int status, std::string_view type, std::string_view detail) {
  Json doc = {{"type", type}, {"detail", detail}, {"status", status}};
  return HttpResponse::WithBody(status, std::string(kProblemContentType), DumpJson(doc));
}

}  // namespace e2eid::server
