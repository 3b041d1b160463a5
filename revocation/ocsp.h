// OCSP responder (RFC 6960, with the RFC 5019 lightweight profile's caching).
//
// Signing: a delegated responder (RFC 6960 §4.2.2.2). Create() generates a P-256 key and has the
// intermediate issue it a certificate with ca::Profile::kOcspResponder (extKeyUsage OCSPSigning,
// id-pkix-ocsp-nocheck), valid `responder_validity` (clamped by the issuer's validity policy). The
// key lives in memory only. When less than half of the certificate's life is left, the next
// request (or RenewIfDue()) issues a fresh key and certificate; a failed renewal is logged and
// retried at most once a minute while the old certificate is still used. Every responder
// certificate's serial is reserved through the Issuer's SerialRegistry and its issuance is audited
// ("certificate.issue", actor "e2eid", details.profile "ocsp-responder"); it is not stored as a
// certificate row, so no revocation scope (e.g. "before") ever touches it.
//
// Responses: BasicOCSPResponse signed by the responder key (ECDSA P-256 / SHA-256), responderID
// byKey, the responder certificate in `certs`, producedAt = the signing time (taken by OpenSSL from
// the system clock), thisUpdate = Clock::Now(), nextUpdate = thisUpdate + next_update. One
// SingleResponse per CertID, echoing it:
//   - the CertID's issuerNameHash and issuerKeyHash (SHA-1, SHA-256, SHA-384 or SHA-512) must be
//     those of the intermediate, else "unknown";
//   - the serial is looked up in the store: "good", "revoked" (revocationTime, and the
//     revocationReason unless it is 0 "unspecified"), or "unknown" when never issued by this
//     intermediate (no row, or a row with another issuer_id).
// A nonce (RFC 8954) is echoed; a nonce of 0 or more than 32 octets, a request that is not DER, is
// over max_request_bytes, has no or more than max_certids CertIDs, or carries an unknown critical
// extension gets the OCSPResponse status malformedRequest (HTTP 200, as RFC 6960 wants). A store
// failure gives internalError (kUnavailable: tryLater) and is logged.
//
// Cache: responses to one-CertID requests without a nonce are kept per CertID (DER) and reused
// while younger than next_update / 2. OnRevoked (affected > 0) clears the cache and bumps a
// generation counter, so a response built from a snapshot taken before the revocation is never
// cached after it: a revocation shows in the next response. When max_cache_entries is reached the
// cache is emptied (random serials: no useful locality to keep).
//
// HTTP: POST with the DER request as body (any Content-Type), or GET <path_prefix><base64 DER>
// (RFC 6960 A.1; percent-decoded, standard base64 with or without padding, base64url tolerated).
// Content-Type application/ocsp-response. Successful GET responses without nonce carry
// Cache-Control "public, max-age=N, no-transform, must-revalidate" (N = min(max_age, seconds to
// nextUpdate)), ETag (hash of the response) and Last-Modified (thisUpdate); If-None-Match gives
// 304. Other methods: 405.
//
// Thread safety: HandleOcsp, OnRevoked and RenewIfDue may be called concurrently from any threads.
#ifndef E2EID_REVOCATION_OCSP_H_
#define E2EID_REVOCATION_OCSP_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ca/authority.h"
#include "ca/issuer.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/http.h"
#include "revocation/service.h"
#include "store/store.h"

namespace e2eid::revocation {

struct OcspOptions {
  std::chrono::seconds next_update = std::chrono::hours(1);  // nextUpdate - thisUpdate
  // Cap of Cache-Control max-age on GET responses: how stale an HTTP cache may serve a status.
  std::chrono::seconds max_age = std::chrono::seconds(60);
  std::chrono::seconds responder_validity = std::chrono::hours(24 * 7);
  size_t max_cache_entries = 100000;  // 0 disables the cache
  size_t max_request_bytes = 4096;
  size_t max_certids = 8;
  // GET requests: the path is this prefix followed by the encoded request.
  std::string path_prefix = "/ocsp/";
  // Subject of the responder certificate.
  std::string responder_common_name = "e2eid OCSP responder";
  // Errors: kConfig for next_update < 1 min, max_age < 0, responder_validity < 1 h,
  // max_request_bytes < 64, max_certids < 1 or a path_prefix that does not start and end with '/'.
  Status Validate() const;
};

struct OcspStats {
  uint64_t requests = 0;
  uint64_t cache_hits = 0;
  uint64_t malformed = 0;
  uint64_t responder_certificates = 0;  // issued so far, including the first
};

class OcspResponder final : public RevocationListener {
 public:
  // Issues the first responder certificate. All references must outlive the responder (a
  // unique_ptr: it is registered with RevocationService::AddListener by address). Errors:
  // kConfig (options), those of Issuer::Issue and the store (audit).
  static Result<std::unique_ptr<OcspResponder>> Create(const ca::CertificateAuthority& ca,
                                                       const ca::Issuer& issuer,
                                                       store::Store& store, const Clock& clock,
                                                       OcspOptions options = {});
  ~OcspResponder() override;
  OcspResponder(const OcspResponder&) = delete;
  OcspResponder& operator=(const OcspResponder&) = delete;

  // POST or GET as described above. Never fails for a bad OCSP request (that is an OCSP
  // malformedRequest response); returns an error only for what is not OCSP at all (none today).
  Result<HttpResponse> HandleOcsp(const HttpRequest& request);

  // The OCSPResponse DER for an OCSPRequest DER (what HandleOcsp does for POST).
  std::string Respond(std::span<const uint8_t> request_der);

  // Clears the response cache (ignored when affected == 0).
  void OnRevoked(const RevocationOutcome& outcome) override;

  // Renews the responder certificate when half its life has passed. Errors: those of issuance.
  Status RenewIfDue();

  // PEM of the current responder certificate.
  std::string responder_certificate_pem() const;
  OcspStats stats() const;

 private:
  struct Signer;        // key + certificate (defined in ocsp.cc)
  struct Response;      // an encoded response and its times
  struct IssuerHashes;  // the intermediate's name and key hashes per digest

  OcspResponder(const ca::CertificateAuthority& ca, const ca::Issuer& issuer, store::Store& store,
                const Clock& clock, OcspOptions options);
  Result<std::shared_ptr<const Signer>> IssueSigner();
  std::shared_ptr<const Signer> CurrentSigner() const;
  std::shared_ptr<const Response> Answer(std::span<const uint8_t> request_der);
  std::shared_ptr<const Response> Build(OCSP_REQUEST* request, bool has_nonce);

  const ca::CertificateAuthority& ca_;
  const ca::Issuer& issuer_;
  store::Store& store_;
  const Clock& clock_;
  const OcspOptions options_;
  std::string issuer_id_;
  std::unique_ptr<const IssuerHashes> hashes_;

  mutable std::mutex signer_mu_;
  std::shared_ptr<const Signer> signer_;
  std::atomic<int64_t> renew_at_unix_{0};  // the current signer's renew_at, for a lock-free check
  std::mutex renew_mu_;                    // one renewal at a time
  std::chrono::steady_clock::time_point next_renew_try_;  // guarded by renew_mu_

  std::shared_mutex cache_mu_;
  std::unordered_map<std::string, std::shared_ptr<const Response>> cache_;
  std::atomic<uint64_t> generation_{0};

  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> signers_issued_{0};
};

}  // namespace e2eid::revocation

#endif  // E2EID_REVOCATION_OCSP_H_
