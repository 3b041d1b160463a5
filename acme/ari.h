// ACME Renewal Information (RFC 9773): certificate identifiers and suggested renewal windows.
//
// A certificate identifier is base64url(AKI keyIdentifier) "." base64url(serial), where the serial
// is the content octets of the DER INTEGER (a leading 0x00 when the top bit is set, as DER
// requires). Pure functions: thread-safe.
#ifndef E2EID_ACME_ARI_H_
#define E2EID_ACME_ARI_H_

#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/error.h"
#include "crypto/openssl.h"

namespace e2eid::acme {

struct AriCertId {
  Bytes key_identifier;    // the certificate's authorityKeyIdentifier keyIdentifier
  std::string serial_hex;  // canonical lowercase hex (store::IsCanonicalSerialHex)
  std::string canonical;   // the identifier re-encoded: what the store keeps in Order::replaces
};

// Parses an identifier. Errors: kMalformed when there is not exactly one '.', a part is not
// strict base64url or empty, the serial is not a minimal positive DER INTEGER content, or the
// serial is longer than 20 octets.
Result<AriCertId> ParseAriCertId(std::string_view text);

// The identifier of `cert`. Errors: kMalformed when the certificate has no AKI keyIdentifier;
// kCrypto when OpenSSL fails.
Result<std::string> AriCertIdOf(X509* cert);

// The AKI keyIdentifier of `cert`. Errors: kMalformed when absent.
Result<Bytes> AuthorityKeyIdOf(X509* cert);

struct RenewalWindow {
  TimePoint start;
  TimePoint end;
};

// The window a client should renew in: from two thirds to five sixths of the certificate's
// lifetime. For a revoked certificate, a window that has already passed ([now - 1h, now - 1s]),
// so that clients renew at once.
RenewalWindow SuggestedRenewalWindow(TimePoint not_before, TimePoint not_after, bool revoked,
                                     TimePoint now);

}  // namespace e2eid::acme

#endif  // E2EID_ACME_ARI_H_
