#include "core/error.h"

namespace e2eid {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kAccountDoesNotExist:
      return "accountDoesNotExist";
    case ErrorCode::kAlreadyReplaced:
      return "alreadyReplaced";
    case ErrorCode::kAlreadyRevoked:
      return "alreadyRevoked";
    case ErrorCode::kBadCsr:
      return "badCSR";
    case ErrorCode::kBadNonce:
      return "badNonce";
    case ErrorCode::kBadPublicKey:
      return "badPublicKey";
    case ErrorCode::kBadRevocationReason:
      return "badRevocationReason";
    case ErrorCode::kBadSignatureAlgorithm:
      return "badSignatureAlgorithm";
    case ErrorCode::kCaa:
      return "caa";
    case ErrorCode::kCompound:
      return "compound";
    case ErrorCode::kConnection:
      return "connection";
    case ErrorCode::kDns:
      return "dns";
    case ErrorCode::kExternalAccountRequired:
      return "externalAccountRequired";
    case ErrorCode::kIncorrectResponse:
      return "incorrectResponse";
    case ErrorCode::kInvalidContact:
      return "invalidContact";
    case ErrorCode::kMalformed:
      return "malformed";
    case ErrorCode::kOrderNotReady:
      return "orderNotReady";
    case ErrorCode::kRateLimited:
      return "rateLimited";
    case ErrorCode::kRejectedIdentifier:
      return "rejectedIdentifier";
    case ErrorCode::kServerInternal:
      return "serverInternal";
    case ErrorCode::kTls:
      return "tls";
    case ErrorCode::kUnauthorized:
      return "unauthorized";
    case ErrorCode::kUnsupportedContact:
      return "unsupportedContact";
    case ErrorCode::kUnsupportedIdentifier:
      return "unsupportedIdentifier";
    case ErrorCode::kUserActionRequired:
      return "userActionRequired";
    case ErrorCode::kNotFound:
      return "notFound";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kForbidden:
      return "forbidden";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kInvalidArgument:
      return "invalidArgument";
    case ErrorCode::kAlreadyExists:
      return "alreadyExists";
    case ErrorCode::kPayloadTooLarge:
      return "payloadTooLarge";
    case ErrorCode::kUnsupportedMediaType:
      return "unsupportedMediaType";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kStore:
      return "store";
    case ErrorCode::kCrypto:
      return "crypto";
    case ErrorCode::kConfig:
      return "config";
    case ErrorCode::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

bool IsClientFacing(ErrorCode code) {
  return static_cast<int>(code) < static_cast<int>(ErrorCode::kInternal);
}

std::string Error::ToString() const {
  std::string out(ErrorCodeName(code_));
  out += ": ";
  out += detail_;
  for (const auto& s : subproblems_) {
    out += "; [";
    out += ErrorCodeName(s.code);
    if (!s.identifier_value.empty()) {
      out += " " + s.identifier_type + ":" + s.identifier_value;
    }
    out += "] " + s.detail;
  }
  return out;
}

}  // namespace e2eid
