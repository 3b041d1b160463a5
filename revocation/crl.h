// CRL generation (RFC 5280 §5) and publishing.
//
// One full CRL per issuing intermediate: v2, signed by the intermediate's key (digest per
// crypto::SignatureDigest), issuer = the intermediate's subject, thisUpdate = now, nextUpdate = now
// + lifetime, extensions cRLNumber (store NextCrlNumber: monotonic, shared by every instance using
// the database) and authorityKeyIdentifier (the intermediate's SKI). One entry per revoked
// certificate that has not expired yet (expired ones drop off, RFC 5280 §3.3): serial,
// revocationDate and a reasonCode extension, left out for 0 "unspecified" (RFC 5280 §5.3.1).
// Entries are sorted by serial.
//
// Which certificates belong to the intermediate: store::Certificate::issuer_id is the lowercase hex
// of the issuing key identifier (the leaf's AKI, which is the intermediate's SKI; the ACME engine
// records it so) or "" for records that name none. Both are listed.
//
// Size and speed: one entry is about 46 bytes of DER (16-byte serial, reason), so 1,000,000 entries
// give a ~46 MB CRL. OpenSSL builds everything but the entry list (version, algorithm, issuer,
// times, extensions: a CRL skeleton signed by X509_CRL_sign); the entry list is encoded here
// directly, sorted once by serial, inserted into the skeleton's TBSCertList, and the result is
// signed with EVP_DigestSign. Building 1,000,000 entries through X509_CRL_add0_revoked costs ~13 µs
// per entry (OpenSSL's template encoder re-walks every nested SEQUENCE to compute lengths, and the
// CRL is encoded twice); the direct encoding takes ~1.3 µs per entry (1,000,000 entries: 1.3 s).
// Tests check the result against OpenSSL's own re-encoding (i2d_re_X509_CRL_tbs) byte for byte.
// Numbers: bench/README.md, "Revocation". With short-lived device certificates (24 h by default)
// the CRL holds only the revocations of the last day, so a million entries is an extreme case.
//
// Scaling beyond one full CRL (not built; cheap to add when needed):
//   - Partitioned CRLs: N shards by serial prefix (serials are random, so the first hex digit gives
//     16 even shards). Each leaf's cRLDistributionPoints names its shard URL (/crl/3); each shard
//     CRL carries a critical IssuingDistributionPoint with that distributionPoint URL and
//     onlyContainsUserCerts, so a relying party only fetches 1/N of the entries. CRL numbers are
//     per shard (issuer_id "<ski>/<shard>" in crl_state).
//   - Delta CRLs (RFC 5280 §5.2.4): a daily base CRL plus a delta with the DeltaCRLIndicator (the
//     base's CRL number) listing revocations since the base (revocation_events / revoked_at >
//     base.thisUpdate), advertised by FreshestCRL. Few relying parties support deltas, so shards
//     are the better first step.
//
// Thread safety: the free functions touch only their arguments. CrlPublisher is thread-safe.
#ifndef E2EID_REVOCATION_CRL_H_
#define E2EID_REVOCATION_CRL_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ca/authority.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/http.h"
#include "revocation/service.h"
#include "store/store.h"

namespace e2eid::revocation {

// One CRL entry.
struct CrlEntry {
  std::string serial_hex;  // canonical lowercase hex
  TimePoint revoked_at{};
  int reason = 0;
};

struct BuiltCrl {
  Bytes der;
  int64_t number = 0;
  TimePoint this_update{};
  TimePoint next_update{};
  size_t entries = 0;
};

// The issuer id certificates of this CA carry in the store: lowercase hex of the intermediate's
// subjectKeyIdentifier. Errors: kInternal when the intermediate has no SKI.
Result<std::string> IssuerIdOf(const ca::CertificateAuthority& ca);

// Every revoked, unexpired (not_after >= now) certificate of `issuer_id` (or with an empty
// issuer_id), paging through Transaction::ListCrlEntries. Errors: those of the store.
Result<std::vector<CrlEntry>> CollectCrlEntries(store::Transaction& tx, std::string_view issuer_id,
                                                TimePoint now);

// Signs a CRL over `entries` (any order; sorted by serial in the CRL). Errors: kInvalidArgument for
// a bad serial or reason, number < 0 or next_update <= this_update; kCrypto when OpenSSL fails.
Result<Bytes> SignCrl(const ca::CertificateAuthority& ca, std::span<const CrlEntry> entries,
                      int64_t number, TimePoint this_update, TimePoint next_update);

// Collect + NextCrlNumber + Sign, all in `tx` (which must be writable: the CRL number is
// allocated there and given back if the transaction rolls back). Errors: as above.
Result<BuiltCrl> BuildCrl(const ca::CertificateAuthority& ca, store::Transaction& tx, TimePoint now,
                          std::chrono::seconds lifetime);

// "-----BEGIN X509 CRL-----" PEM of a DER CRL. Errors: kMalformed for bad DER.
Result<std::string> CrlDerToPem(std::span<const uint8_t> der);

struct CrlOptions {
  // nextUpdate - thisUpdate. The publisher re-signs at half of it even without revocations.
  std::chrono::seconds lifetime = std::chrono::hours(1);
  // Cap of Cache-Control max-age (it is never beyond nextUpdate either): how long an HTTP cache
  // may serve a CRL without asking again, i.e. how stale a relying party behind a cache can be.
  std::chrono::seconds max_age = std::chrono::seconds(60);
  // After a revocation, wait this long before building so that a burst becomes one CRL. The CRL
  // is published within coalesce + build time (build: ~1 s per 100,000 entries with the current
  // store, dominated by reading the rows; see bench/README.md).
  std::chrono::milliseconds coalesce = std::chrono::milliseconds(100);
  // After a failed build, the publisher tries again this much later (keeps serving the last CRL).
  std::chrono::seconds retry = std::chrono::seconds(5);
  // Errors: kConfig when lifetime < 2 min, max_age < 0, coalesce < 0 or retry < 1 s.
  Status Validate() const;
};

// A published CRL.
struct PublishedCrl {
  Bytes der;
  std::string pem;
  int64_t number = 0;
  TimePoint this_update{};
  TimePoint next_update{};
  size_t entries = 0;
};

// Keeps the current CRL in memory and serves it. Start() builds the first CRL; a background
// thread rebuilds after OnRevoked (coalescing bursts) and when half the lifetime has passed (the
// thread checks the Clock every second, so a FakeClock works too). Each build reads the entries
// in a read-only snapshot, then allocates the CRL number in a short write transaction, so a large
// build never holds the store's write lock.
class CrlPublisher final : public RevocationListener {
 public:
  // All references must outlive the publisher. `options` must pass Validate().
  CrlPublisher(const ca::CertificateAuthority& ca, store::Store& store, const Clock& clock,
               CrlOptions options = {});
  ~CrlPublisher() override;  // Stop()
  CrlPublisher(const CrlPublisher&) = delete;
  CrlPublisher& operator=(const CrlPublisher&) = delete;

  // Builds and publishes the first CRL, then starts the background thread. Errors: those of
  // Rebuild(); kInternal when already started.
  Status Start();
  // Stops and joins the thread (idempotent). The last CRL stays available.
  void Stop();

  // Marks the CRL stale; the thread rebuilds within `coalesce` (ignored when affected == 0).
  void OnRevoked(const RevocationOutcome& outcome) override;

  // Builds and publishes a CRL now, on the caller's thread. Errors: kStore, kCrypto, kInternal.
  Status Rebuild();

  // The current CRL, or nullptr before the first build.
  std::shared_ptr<const PublishedCrl> Current() const;
  // Waits until a CRL with a number greater than `after` is published or `timeout` passes;
  // returns the current number (0 when none).
  int64_t WaitForNumberAbove(int64_t after, std::chrono::milliseconds timeout) const;

  // GET or HEAD (the path is the router's business):
  //   DER, Content-Type application/pkix-crl; with the query "format=pem" or an Accept header
  //   naming application/x-pem-file (and not application/pkix-crl): PEM, application/x-pem-file.
  //   Cache-Control "public, max-age=N" (N = min(max_age, seconds to nextUpdate)),
  //   Last-Modified (thisUpdate) and ETag ("<number>-der" / "<number>-pem"); If-None-Match
  //   naming the current ETag gives 304. Other methods: 405 with Allow.
  // Errors: kUnavailable before the first CRL; kInvalidArgument for an unknown format value.
  Result<HttpResponse> HandleCrl(const HttpRequest& request) const;

 private:
  void Run();

  const ca::CertificateAuthority& ca_;
  store::Store& store_;
  const Clock& clock_;
  const CrlOptions options_;

  std::mutex build_mu_;  // one build at a time, so numbers follow snapshots

  mutable std::mutex mu_;
  mutable std::condition_variable published_cv_;
  std::condition_variable wake_cv_;
  std::shared_ptr<const PublishedCrl> current_;
  bool dirty_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace e2eid::revocation

#endif  // E2EID_REVOCATION_CRL_H_
