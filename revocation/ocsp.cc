#include "revocation/ocsp.h"

#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "ca/x509.h"
#include "core/encoding.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/digest.h"
#include "crypto/key.h"
#include "crypto/openssl.h"
#include "revocation/crl.h"
#include "revocation/http_util.h"

namespace e2eid::revocation {

using crypto::OpenSslError;

namespace {

constexpr size_t kMaxNonceBytes = 32;  // RFC 8954 §2.1
constexpr auto kRenewRetry = std::chrono::minutes(1);
constexpr std::string_view kResponseType = "application/ocsp-response";

// OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } for the error statuses (RFC 6960 §4.2.1).
std::string ErrorResponseDer(int status) {
  return std::string{0x30, 0x03, 0x0a, 0x01, static_cast<char>(status)};
}

// The nonce octets of an id-pkix-ocsp-nonce extension value: the DER OCTET STRING inside (RFC
// 8954), or, for clients that put the raw bytes there, the whole value.
size_t NonceLength(X509_EXTENSION* ext) {
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
  const unsigned char* p = ASN1_STRING_get0_data(value);
  const long len = ASN1_STRING_length(value);
  const unsigned char* q = p;
  crypto::Asn1OctetStringPtr inner(d2i_ASN1_OCTET_STRING(nullptr, &q, len));
  if (inner && q == p + len) return static_cast<size_t>(ASN1_STRING_length(inner.get()));
  crypto::ClearOpenSslErrors();
  return static_cast<size_t>(len);
}

std::span<const uint8_t> OctetBytes(const ASN1_OCTET_STRING* s) {
  return {ASN1_STRING_get0_data(s), static_cast<size_t>(ASN1_STRING_length(s))};
}

Result<Bytes> Digest(const EVP_MD* md, std::span<const uint8_t> data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
    return Fail(OpenSslError("EVP_Digest"));
  }
  return Bytes(out, out + len);
}

}  // namespace

struct OcspResponder::Signer {
  Signer(crypto::X509Ptr c, crypto::PrivateKey k) : cert(std::move(c)), key(std::move(k)) {}
  crypto::X509Ptr cert;
  crypto::PrivateKey key;
  std::string pem;
  TimePoint not_before{};
  TimePoint not_after{};
  TimePoint renew_at{};
};

struct OcspResponder::Response {
  std::string der;
  bool successful = false;
  bool cacheable = false;  // successful and without nonce
  TimePoint this_update{};
  TimePoint next_update{};
  std::string etag;
};

struct OcspResponder::IssuerHashes {
  struct Entry {
    int nid;
    Bytes name_hash;
    Bytes key_hash;
  };
  std::vector<Entry> entries;

  const Entry* Find(int nid) const {
    for (const auto& e : entries) {
      if (e.nid == nid) return &e;
    }
    return nullptr;
  }
};

Status OcspOptions::Validate() const {
  if (next_update < std::chrono::minutes(1)) {
    return Fail(Error::Config("OCSP next_update must be at least 1 minute"));
  }
  if (max_age < std::chrono::seconds(0)) return Fail(Error::Config("OCSP max-age is negative"));
  if (responder_validity < std::chrono::hours(1)) {
    return Fail(Error::Config("OCSP responder certificate validity must be at least 1 hour"));
  }
  if (max_request_bytes < 64) return Fail(Error::Config("OCSP max_request_bytes is below 64"));
  if (max_certids < 1) return Fail(Error::Config("OCSP max_certids must be at least 1"));
  if (path_prefix.size() < 2 || path_prefix.front() != '/' || path_prefix.back() != '/') {
    return Fail(Error::Config("OCSP path_prefix must start and end with '/'"));
  }
  if (responder_common_name.empty()) {
    return Fail(Error::Config("OCSP responder common name is empty"));
  }
  return Ok();
}

OcspResponder::OcspResponder(const ca::CertificateAuthority& ca, const ca::Issuer& issuer,
                             store::Store& store, const Clock& clock, OcspOptions options)
    : ca_(ca), issuer_(issuer), store_(store), clock_(clock), options_(std::move(options)) {}

OcspResponder::~OcspResponder() = default;

Result<std::unique_ptr<OcspResponder>> OcspResponder::Create(const ca::CertificateAuthority& ca,
                                                             const ca::Issuer& issuer,
                                                             store::Store& store,
                                                             const Clock& clock,
                                                             OcspOptions options) {
  E2EID_CHECK_OK(options.Validate());
  std::unique_ptr<OcspResponder> r(new OcspResponder(ca, issuer, store, clock, std::move(options)));
  E2EID_TRY(issuer_id, IssuerIdOf(ca));
  r->issuer_id_ = std::move(issuer_id);

  // The intermediate's name and key hashes for every digest a CertID may use.
  X509* intermediate = ca.intermediate();
  unsigned char* name_raw = nullptr;
  const int name_len = i2d_X509_NAME(X509_get_subject_name(intermediate), &name_raw);
  crypto::OpenSslBufferPtr name_owned(name_raw);
  if (name_len <= 0) return Fail(OpenSslError("i2d_X509_NAME"));
  const ASN1_BIT_STRING* key_bits = X509_get0_pubkey_bitstr(intermediate);
  if (key_bits == nullptr) return Fail(OpenSslError("X509_get0_pubkey_bitstr"));
  auto hashes = std::make_unique<IssuerHashes>();
  const std::array<std::pair<int, const EVP_MD*>, 4> digests = {{{NID_sha1, EVP_sha1()},
                                                                 {NID_sha256, EVP_sha256()},
                                                                 {NID_sha384, EVP_sha384()},
                                                                 {NID_sha512, EVP_sha512()}}};
  for (const auto& [nid, md] : digests) {
    E2EID_TRY(name_hash, Digest(md, {name_raw, static_cast<size_t>(name_len)}));
    E2EID_TRY(key_hash, Digest(md, OctetBytes(key_bits)));
    hashes->entries.push_back({nid, std::move(name_hash), std::move(key_hash)});
  }
  r->hashes_ = std::move(hashes);

  E2EID_TRY(signer, r->IssueSigner());
  r->renew_at_unix_.store(ToUnix(signer->renew_at));
  r->signer_ = std::move(signer);
  return r;
}

Result<std::shared_ptr<const OcspResponder::Signer>> OcspResponder::IssueSigner() {
  E2EID_TRY(key, crypto::PrivateKey::Generate(crypto::KeyType::kP256));
  E2EID_TRY(pub, key.public_key());
  const TimePoint now = clock_.Now();
  ca::LeafRequest request;
  request.public_key = &pub;
  request.subject = {{"CN", options_.responder_common_name}};
  request.profile = ca::Profile::kOcspResponder;
  request.not_after = now + options_.responder_validity;
  E2EID_TRY(issued, issuer_.Issue(request));
  E2EID_TRY(cert, ca::CertificateFromDer(issued.der));
  auto signer = std::make_shared<Signer>(std::move(cert), std::move(key));
  signer->pem = issued.pem;
  signer->not_before = issued.not_before;
  signer->not_after = issued.not_after;
  signer->renew_at = issued.not_before + (issued.not_after - issued.not_before) / 2;
  E2EID_CHECK_OK(store_.InTransaction([&](store::Transaction& tx) -> Status {
    store::AuditEvent e;
    e.at = now;
    e.actor = "e2eid";
    e.action = "certificate.issue";
    e.target = issued.serial_hex;
    e.source = "internal";
    e.outcome = "success";
    e.details = DumpJson({{"profile", "ocsp-responder"},
                          {"not_before", FormatRfc3339(issued.not_before)},
                          {"not_after", FormatRfc3339(issued.not_after)},
                          {"spki_sha256", issued.spki_sha256_hex}});
    E2EID_TRY(id, tx.AppendAudit(e));
    (void)id;
    return Ok();
  }));
  signers_issued_.fetch_add(1);
  LogInfo("OCSP responder certificate issued",
          {{"serial", issued.serial_hex}, {"not_after", FormatRfc3339(issued.not_after)}});
  return std::shared_ptr<const Signer>(std::move(signer));
}

std::shared_ptr<const OcspResponder::Signer> OcspResponder::CurrentSigner() const {
  std::lock_guard lock(signer_mu_);
  return signer_;
}

Status OcspResponder::RenewIfDue() {
  if (ToUnix(clock_.Now()) < renew_at_unix_.load(std::memory_order_relaxed)) return Ok();
  const auto signer = CurrentSigner();
  if (clock_.Now() < signer->renew_at) return Ok();
  std::unique_lock lock(renew_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return Ok();  // another thread is renewing
  if (CurrentSigner() != signer) return Ok();
  const auto steady_now = std::chrono::steady_clock::now();
  if (steady_now < next_renew_try_) return Ok();
  auto fresh = IssueSigner();
  if (!fresh) {
    next_renew_try_ = steady_now + kRenewRetry;
    LogError("renewing the OCSP responder certificate failed; keeping the current one",
             {{"error", fresh.error().ToString()},
              {"current_not_after", FormatRfc3339(signer->not_after)}});
    return Fail(std::move(fresh.error()));
  }
  {
    std::lock_guard signer_lock(signer_mu_);
    signer_ = std::move(*fresh);
    renew_at_unix_.store(ToUnix(signer_->renew_at));
  }
  std::unique_lock cache_lock(cache_mu_);
  generation_.fetch_add(1);
  cache_.clear();
  return Ok();
}

std::string OcspResponder::responder_certificate_pem() const { return CurrentSigner()->pem; }

OcspStats OcspResponder::stats() const {
  OcspStats s;
  s.requests = requests_.load();
  s.cache_hits = cache_hits_.load();
  s.malformed = malformed_.load();
  s.responder_certificates = signers_issued_.load();
  return s;
}

void OcspResponder::OnRevoked(const RevocationOutcome& outcome) {
  if (outcome.affected == 0) return;
  std::unique_lock lock(cache_mu_);
  generation_.fetch_add(1);
  cache_.clear();
}

std::shared_ptr<const OcspResponder::Response> OcspResponder::Build(OCSP_REQUEST* request,
                                                                    bool has_nonce) {
  auto error_response = [](int status) {
    auto r = std::make_shared<Response>();
    r->der = ErrorResponseDer(status);
    return std::shared_ptr<const Response>(std::move(r));
  };
  auto internal_error = [&](const Error& e) {
    LogError("OCSP response failed", {{"error", e.ToString()}});
    return error_response(e.code() == ErrorCode::kUnavailable ? OCSP_RESPONSE_STATUS_TRYLATER
                                                              : OCSP_RESPONSE_STATUS_INTERNALERROR);
  };

  // What each CertID asks about: a serial of ours to look up, or nothing (unknown).
  struct Item {
    OCSP_CERTID* id = nullptr;
    std::optional<std::string> serial;
    int status = V_OCSP_CERTSTATUS_UNKNOWN;
    TimePoint revoked_at{};
    int reason = 0;
  };
  const int count = OCSP_request_onereq_count(request);
  std::vector<Item> items(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    Item& item = items[static_cast<size_t>(i)];
    item.id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(request, i));
    ASN1_OCTET_STRING* name_hash = nullptr;
    ASN1_OCTET_STRING* key_hash = nullptr;
    ASN1_OBJECT* md = nullptr;
    ASN1_INTEGER* serial = nullptr;
    if (item.id == nullptr ||
        OCSP_id_get0_info(&name_hash, &md, &key_hash, &serial, item.id) != 1) {
      return error_response(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    }
    const IssuerHashes::Entry* ours = hashes_->Find(OBJ_obj2nid(md));
    if (ours == nullptr) continue;
    const auto nh = OctetBytes(name_hash);
    const auto kh = OctetBytes(key_hash);
    if (!std::ranges::equal(nh, ours->name_hash) || !std::ranges::equal(kh, ours->key_hash)) {
      continue;
    }
    auto magnitude = crypto::Asn1IntegerToBytes(serial);
    if (!magnitude) {
      crypto::ClearOpenSslErrors();
      continue;  // a negative serial was never issued
    }
    std::string hex = HexEncode(*magnitude);
    hex.erase(0, std::min(hex.find_first_not_of('0'), hex.size() - 1));
    if (store::IsCanonicalSerialHex(hex)) item.serial = std::move(hex);
  }

  const TimePoint now = clock_.Now();
  if (std::ranges::any_of(items, [](const Item& i) { return i.serial.has_value(); })) {
    auto looked_up = store_.ReadOnly([&](store::Transaction& tx) -> Status {
      for (Item& item : items) {
        if (!item.serial) continue;
        auto cert = tx.GetCertificate(*item.serial);
        if (!cert) {
          if (cert.error().code() == ErrorCode::kNotFound) continue;
          return Fail(std::move(cert.error()));
        }
        if (!cert->issuer_id.empty() && cert->issuer_id != issuer_id_) continue;
        if (cert->status == store::CertificateStatus::kRevoked) {
          item.status = V_OCSP_CERTSTATUS_REVOKED;
          item.revoked_at = cert->revoked_at.value_or(cert->issued_at);
          item.reason = cert->revocation_reason.value_or(0);
        } else {
          item.status = V_OCSP_CERTSTATUS_GOOD;
        }
      }
      return Ok();
    });
    if (!looked_up) return internal_error(looked_up.error());
  }

  const auto signer = CurrentSigner();
  auto built = [&]() -> Result<std::shared_ptr<const Response>> {
    crypto::OcspBasicRespPtr basic(OCSP_BASICRESP_new());
    if (!basic) return Fail(OpenSslError("OCSP_BASICRESP_new"));
    const TimePoint next = now + options_.next_update;
    E2EID_TRY(this_time, crypto::Asn1TimeFromTimePoint(now));
    E2EID_TRY(next_time, crypto::Asn1TimeFromTimePoint(next));
    for (const Item& item : items) {
      crypto::Asn1TimePtr revoked_time;
      int reason = OCSP_REVOKED_STATUS_NOSTATUS;
      if (item.status == V_OCSP_CERTSTATUS_REVOKED) {
        E2EID_TRY(t, crypto::Asn1TimeFromTimePoint(item.revoked_at));
        revoked_time = std::move(t);
        if (item.reason != 0) reason = item.reason;
      }
      if (OCSP_basic_add1_status(basic.get(), item.id, item.status, reason, revoked_time.get(),
                                 this_time.get(), next_time.get()) == nullptr) {
        return Fail(OpenSslError("OCSP_basic_add1_status"));
      }
    }
    if (has_nonce && OCSP_copy_nonce(basic.get(), request) != 1) {
      return Fail(OpenSslError("OCSP_copy_nonce"));
    }
    if (OCSP_basic_sign(basic.get(), signer->cert.get(), signer->key.get(),
                        crypto::SignatureDigest(signer->key.type()), nullptr,
                        OCSP_RESPID_KEY) != 1) {
      return Fail(OpenSslError("OCSP_basic_sign"));
    }
    crypto::OcspResponsePtr response(
        OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic.get()));
    if (!response) return Fail(OpenSslError("OCSP_response_create"));
    unsigned char* raw = nullptr;
    const int len = i2d_OCSP_RESPONSE(response.get(), &raw);
    crypto::OpenSslBufferPtr owned(raw);
    if (len <= 0) return Fail(OpenSslError("i2d_OCSP_RESPONSE"));
    auto r = std::make_shared<Response>();
    r->der.assign(reinterpret_cast<const char*>(raw), static_cast<size_t>(len));
    r->successful = true;
    r->cacheable = !has_nonce;
    r->this_update = now;
    r->next_update = next;
    const Bytes digest = crypto::Sha256(r->der);
    r->etag = "\"" + HexEncode(std::span<const uint8_t>(digest).first(16)) + "\"";
    return std::shared_ptr<const Response>(std::move(r));
  }();
  if (!built) return internal_error(built.error());
  return std::move(*built);
}

std::shared_ptr<const OcspResponder::Response> OcspResponder::Answer(
    std::span<const uint8_t> request_der) {
  requests_.fetch_add(1);
  auto malformed = [this] {
    malformed_.fetch_add(1);
    auto r = std::make_shared<Response>();
    r->der = ErrorResponseDer(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    return std::shared_ptr<const Response>(std::move(r));
  };
  if (request_der.empty() || request_der.size() > options_.max_request_bytes) return malformed();
  const unsigned char* p = request_der.data();
  crypto::OcspRequestPtr request(
      d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(request_der.size())));
  if (!request || p != request_der.data() + request_der.size()) {
    crypto::ClearOpenSslErrors();
    return malformed();
  }
  const int count = OCSP_request_onereq_count(request.get());
  if (count < 1 || static_cast<size_t>(count) > options_.max_certids) return malformed();
  bool has_nonce = false;
  const int ext_count = OCSP_REQUEST_get_ext_count(request.get());
  for (int i = 0; i < ext_count; ++i) {
    X509_EXTENSION* ext = OCSP_REQUEST_get_ext(request.get(), i);
    const int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    if (nid == NID_id_pkix_OCSP_Nonce) {
      const size_t len = NonceLength(ext);
      if (has_nonce || len < 1 || len > kMaxNonceBytes) return malformed();
      has_nonce = true;
    } else if (X509_EXTENSION_get_critical(ext) > 0) {
      return malformed();  // a critical extension we do not understand
    }
  }

  (void)RenewIfDue();  // logs its own failure; the current certificate stays in use

  std::string key;
  const bool cacheable = count == 1 && !has_nonce && options_.max_cache_entries > 0;
  if (cacheable) {
    unsigned char* raw = nullptr;
    const int len =
        i2d_OCSP_CERTID(OCSP_onereq_get0_id(OCSP_request_onereq_get0(request.get(), 0)), &raw);
    crypto::OpenSslBufferPtr owned(raw);
    if (len <= 0) {
      crypto::ClearOpenSslErrors();
      return malformed();
    }
    key.assign(reinterpret_cast<const char*>(raw), static_cast<size_t>(len));
    const TimePoint now = clock_.Now();
    std::shared_lock lock(cache_mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (now >= it->second->this_update &&
          now < it->second->this_update + options_.next_update / 2) {
        cache_hits_.fetch_add(1);
        return it->second;
      }
    }
  }
  const uint64_t generation = generation_.load();
  auto response = Build(request.get(), has_nonce);
  if (cacheable && response->successful) {
    std::unique_lock lock(cache_mu_);
    // A revocation committed while we looked up the store: do not keep what we saw.
    if (generation == generation_.load()) {
      if (cache_.size() >= options_.max_cache_entries) cache_.clear();
      cache_[key] = response;
    }
  }
  return response;
}

std::string OcspResponder::Respond(std::span<const uint8_t> request_der) {
  return Answer(request_der)->der;
}

Result<HttpResponse> OcspResponder::HandleOcsp(const HttpRequest& request) {
  std::shared_ptr<const Response> response;
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (request.method == "POST") {
    response = Answer(AsBytes(request.body));
  } else if (get) {
    Bytes der;
    if (request.path.starts_with(options_.path_prefix) &&
        request.path.size() - options_.path_prefix.size() <= 2 * options_.max_request_bytes) {
      auto decoded =
          PercentDecode(std::string_view(request.path).substr(options_.path_prefix.size()));
      if (decoded) {
        std::string b64 = std::move(*decoded);
        std::ranges::replace(b64, '-', '+');
        std::ranges::replace(b64, '_', '/');
        while (b64.size() % 4 != 0) b64 += '=';
        if (auto bytes = Base64Decode(b64)) der = std::move(*bytes);
      }
    }
    response = Answer(der);  // empty: malformedRequest
  } else {
    return MethodNotAllowed("GET, POST");
  }

  HttpResponse r = HttpResponse::WithBody(200, std::string(kResponseType), "");
  if (get && response->cacheable) {
    const TimePoint now = clock_.Now();
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(response->next_update - now);
    const auto max_age = std::clamp(left, std::chrono::seconds(0), options_.max_age);
    r.SetHeader("Cache-Control", "public, max-age=" + std::to_string(max_age.count()) +
                                     ", no-transform, must-revalidate");
    r.SetHeader("ETag", response->etag);
    r.SetHeader("Last-Modified", HttpDate(response->this_update));
    if (IfNoneMatchHits(request.Header("If-None-Match"), response->etag)) {
      r.status = 304;
      r.RemoveHeader("Content-Type");
      return r;
    }
  } else if (get) {
    r.SetHeader("Cache-Control", "no-store");
  }
  r.body = response->der;
  return r;
}

}  // namespace e2eid::revocation
