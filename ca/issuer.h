// Issuer: signs leaf certificates with the intermediate.
//
// The caller passes only a public key, a subject, names and a requested window; the profile decides
// every extension (nothing is copied from a CSR). Serial numbers are 128-bit random values reserved
// in a SerialRegistry before signing, so no serial is ever used twice. Validity is clamped by
// ValidityPolicy.
//
// Thread-safe: Issue() may be called from many threads at once (the CA, clock, random source and
// registry passed in must be thread-safe too, as the production ones are).
#ifndef E2EID_CA_ISSUER_H_
#define E2EID_CA_ISSUER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ca/authority.h"
#include "ca/profile.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/random.h"
#include "crypto/key.h"

namespace e2eid::ca {

// Where serials are recorded (the store, in production). Reserve() must be atomic: two calls with
// the same serial never both succeed.
class SerialRegistry {
 public:
  virtual ~SerialRegistry() = default;
  // Records `serial_hex` (lowercase hex, no leading zeros) as used.
  // Errors: kAlreadyExists when it was used before (the issuer then draws another); anything else
  // aborts the issuance.
  virtual Status Reserve(const std::string& serial_hex) = 0;
};

// URLs printed into every leaf; empty ones are left out.
struct IssuerUrls {
  std::string crl_url;         // cRLDistributionPoints
  std::string ocsp_url;        // authorityInfoAccess id-ad-ocsp
  std::string ca_issuers_url;  // authorityInfoAccess id-ad-caIssuers
};

struct LeafRequest {
  const crypto::PublicKey* public_key = nullptr;  // required; must satisfy the key policy
  // Subject attributes in order, e.g. {{"O", "example.com"}, {"CN", "Alice Smith"}}. May be empty
  // when there are names (the SAN extension is then critical).
  std::vector<std::pair<std::string, std::string>> subject;
  std::vector<std::string> dns_names;
  std::vector<std::string> uris;
  Profile profile = Profile::kDevice;
  std::optional<TimePoint> not_before;
  std::optional<TimePoint> not_after;
};

struct IssuedCertificate {
  std::string serial_hex;
  Bytes der;
  std::string pem;        // the leaf alone
  std::string chain_pem;  // leaf, intermediate, root
  TimePoint not_before;
  TimePoint not_after;
  std::string spki_sha256_hex;
  // Lowercase hex of the issuer's key identifier: the intermediate's subjectKeyIdentifier, which
  // is the leaf's authorityKeyIdentifier keyIdentifier (what acme::AuthorityKeyIdOf reads from
  // the leaf). Empty only when the intermediate has none (then issuance fails anyway).
  std::string issuer_key_id_hex;
};

class Issuer {
 public:
  // All references must outlive the Issuer. `policy` must pass ValidityPolicy::Validate().
  Issuer(const CertificateAuthority& ca, ValidityPolicy policy, IssuerUrls urls,
         SerialRegistry& serials, const Clock& clock, RandomSource& random);
  Issuer(const Issuer&) = delete;
  Issuer& operator=(const Issuer&) = delete;

  // Errors: kInvalidArgument (no key, no names for a leaf profile), kMalformed (bad name or
  // subject, bad window), kBadPublicKey (key outside the policy), kStore/kInternal from the
  // registry, kCrypto when signing fails.
  Result<IssuedCertificate> Issue(const LeafRequest& request) const;

  const ValidityPolicy& policy() const { return policy_; }

 private:
  const CertificateAuthority& ca_;
  ValidityPolicy policy_;
  IssuerUrls urls_;
  SerialRegistry& serials_;
  const Clock& clock_;
  RandomSource& random_;
};

}  // namespace e2eid::ca

#endif  // E2EID_CA_ISSUER_H_
