// Helpers for the enrolment client's tests (test code only): a scripted HttpClient, a
// deterministic RandomSource, a tiny test CA, and unsigned JWTs.
#ifndef E2EID_CLI_ENROL_TEST_UTIL_H_
#define E2EID_CLI_ENROL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "ca/x509.h"
#include "core/encoding.h"
#include "core/json.h"
#include "core/random.h"
#include "crypto/key.h"
#include "oidc/http_client.h"

namespace e2eid::cli::testing {

// An HttpClient that answers with a handler and records every request.
class FakeHttpClient final : public oidc::HttpClient {
 public:
  using Handler = std::function<Result<oidc::FetchResponse>(const oidc::FetchRequest&)>;
  explicit FakeHttpClient(Handler handler) : handler_(std::move(handler)) {}
  Result<oidc::FetchResponse> Send(const oidc::FetchRequest& request) override {
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
    }
    return handler_(request);
  }
  std::vector<oidc::FetchRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  Handler handler_;
  mutable std::mutex mu_;
  std::vector<oidc::FetchRequest> requests_;
};

inline oidc::FetchResponse JsonResponse(int status, const Json& body, HttpHeaders headers = {}) {
  oidc::FetchResponse r;
  r.status = status;
  r.headers = std::move(headers);
  r.headers.emplace_back("Content-Type", status >= 400 && body.contains("type")
                                             ? "application/problem+json"
                                             : "application/json");
  r.body = DumpJson(body);
  return r;
}

// Returns the bytes of `script` in order, then zeros.
class ScriptedRandom final : public RandomSource {
 public:
  explicit ScriptedRandom(Bytes script) : script_(std::move(script)) {}
  Status Fill(std::span<uint8_t> out) override {
    for (auto& b : out) b = pos_ < script_.size() ? script_[pos_++] : 0;
    return Ok();
  }

 private:
  Bytes script_;
  size_t pos_ = 0;
};

// "e30.<claims>.c2ln": a JWT-shaped token whose signature nobody checks (the client decodes
// tokens from the token endpoint without verifying them).
inline std::string UnsignedJwt(const Json& claims) {
  return Base64UrlEncode(std::string_view(R"({"alg":"RS256"})")) + "." +
         Base64UrlEncode(DumpJson(claims)) + ".c2ln";
}

// A self-signed test CA (P-256) with a subject key identifier.
struct TestCa {
  crypto::PrivateKey key;
  crypto::X509Ptr cert;
};

inline TestCa MakeTestCa() {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
  EXPECT_TRUE(key);
  crypto::X509Ptr cert(X509_new());
  auto name = ca::BuildName({{"O", "Test CA"}});
  EXPECT_TRUE(name);
  const uint8_t serial[] = {0x01};
  const TimePoint now = FromUnix(1'700'000'000);
  EXPECT_TRUE(ca::SetBasics(cert.get(), serial, name->get(), name->get(),
                            now - std::chrono::hours(1), now + std::chrono::hours(24 * 365),
                            key->get()));
  EXPECT_TRUE(
      ca::AddConfExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  EXPECT_TRUE(ca::AddConfExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  EXPECT_TRUE(ca::SignCertificate(cert.get(), *key));
  return TestCa{std::move(*key), std::move(cert)};
}

// A leaf for `public_key` with the given URIs, signed by `ca`, with an AKI.
inline std::string IssueLeafPem(const TestCa& ca, EVP_PKEY* public_key,
                                const std::vector<std::string>& uris,
                                std::span<const uint8_t> serial, TimePoint not_before,
                                TimePoint not_after) {
  crypto::X509Ptr cert(X509_new());
  auto subject = ca::BuildName({{"O", "example.com"}, {"CN", "Alice Smith"}});
  EXPECT_TRUE(subject);
  EXPECT_TRUE(ca::SetBasics(cert.get(), serial, subject->get(),
                            X509_get_subject_name(ca.cert.get()), not_before, not_after,
                            public_key));
  EXPECT_TRUE(ca::AddSubjectAltName(cert.get(), {}, uris, false));
  EXPECT_TRUE(ca::AddConfExtension(cert.get(), ca.cert.get(), NID_authority_key_identifier,
                                   "keyid:always"));
  EXPECT_TRUE(ca::SignCertificate(cert.get(), ca.key));
  auto leaf = ca::CertificateToPem(cert.get());
  auto root = ca::CertificateToPem(ca.cert.get());
  EXPECT_TRUE(leaf && root);
  return *leaf + *root;
}

}  // namespace e2eid::cli::testing

#endif  // E2EID_CLI_ENROL_TEST_UTIL_H_
