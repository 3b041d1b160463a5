#include "revocation/crl.h"

#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <system_error>
#include <utility>

#include "core/log.h"
#include "crypto/key.h"
#include "crypto/openssl.h"
#include "revocation/http_util.h"

namespace e2eid::revocation {

using crypto::OpenSslError;

namespace {

constexpr int kCrlVersion2 = 1;  // X509_CRL_VERSION_2

// One entry, ready to sort and encode.
struct EncodedEntry {
  std::array<uint8_t, 21>
      serial{};  // INTEGER content (with a leading 0x00 when the top bit is set)
  uint8_t serial_len = 0;
  uint8_t reason = 0;
  uint32_t time = 0;  // index into the encoded revocation times
};

int Nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The DER INTEGER content of a canonical hex serial.
bool SerialContent(std::string_view hex, EncodedEntry* e) {
  if (!store::IsCanonicalSerialHex(hex)) return false;
  std::array<uint8_t, 20> magnitude{};
  size_t n = 0;
  size_t i = 0;
  if (hex.size() % 2 == 1) {
    magnitude[n++] = static_cast<uint8_t>(Nibble(hex[0]));
    i = 1;
  }
  for (; i < hex.size(); i += 2) {
    magnitude[n++] = static_cast<uint8_t>(Nibble(hex[i]) * 16 + Nibble(hex[i + 1]));
  }
  size_t pos = 0;
  if ((magnitude[0] & 0x80) != 0) e->serial[pos++] = 0;
  std::copy_n(magnitude.begin(), n, e->serial.begin() + static_cast<ptrdiff_t>(pos));
  e->serial_len = static_cast<uint8_t>(pos + n);
  return true;
}

// Numeric order of positive INTEGER contents (what X509_CRL_sort does: length, then bytes).
bool SerialLess(const EncodedEntry& a, const EncodedEntry& b) {
  if (a.serial_len != b.serial_len) return a.serial_len < b.serial_len;
  return std::memcmp(a.serial.data(), b.serial.data(), a.serial_len) < 0;
}

void AppendLength(std::string& out, size_t len) {
  if (len < 0x80) {
    out += static_cast<char>(len);
    return;
  }
  int bytes = 0;
  for (size_t l = len; l != 0; l >>= 8) ++bytes;
  out += static_cast<char>(0x80 | bytes);
  for (int b = bytes - 1; b >= 0; --b) out += static_cast<char>((len >> (8 * b)) & 0xff);
}

void AppendTlv(std::string& out, uint8_t tag, std::string_view content) {
  out += static_cast<char>(tag);
  AppendLength(out, content.size());
  out.append(content);
}

// Splits the content of the DER SEQUENCE `tlv` into its elements (whole TLVs). Only what
// OpenSSL produced for us is parsed here: single-byte tags, definite lengths.
Result<std::vector<std::string_view>> SequenceElements(std::string_view tlv) {
  auto read = [](std::string_view in, size_t* header, size_t* len) -> bool {
    if (in.size() < 2) return false;
    const auto first = static_cast<uint8_t>(in[1]);
    if (first < 0x80) {
      *header = 2;
      *len = first;
    } else {
      const size_t n = first & 0x7f;
      if (n == 0 || n > 4 || in.size() < 2 + n) return false;
      *len = 0;
      for (size_t i = 0; i < n; ++i) *len = (*len << 8) | static_cast<uint8_t>(in[2 + i]);
      *header = 2 + n;
    }
    return *header + *len <= in.size();
  };
  size_t header = 0;
  size_t len = 0;
  if (tlv.empty() || static_cast<uint8_t>(tlv[0]) != 0x30 || !read(tlv, &header, &len)) {
    return Fail(Error::Internal("CRL skeleton is not a DER SEQUENCE"));
  }
  std::string_view content = tlv.substr(header, len);
  std::vector<std::string_view> out;
  while (!content.empty()) {
    if (!read(content, &header, &len)) return Fail(Error::Internal("bad DER in CRL skeleton"));
    out.push_back(content.substr(0, header + len));
    content.remove_prefix(header + len);
  }
  return out;
}

// A CRL without entries, built and signed by OpenSSL: version, signature algorithm, issuer,
// thisUpdate, nextUpdate, cRLNumber and authorityKeyIdentifier, all encoded the OpenSSL way.
Result<std::string> CrlSkeleton(const ca::CertificateAuthority& ca, int64_t number,
                                TimePoint this_update, TimePoint next_update) {
  X509* issuer = ca.intermediate();
  crypto::X509CrlPtr crl(X509_CRL_new());
  if (!crl) return Fail(OpenSslError("X509_CRL_new"));
  if (X509_CRL_set_version(crl.get(), kCrlVersion2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer)) != 1) {
    return Fail(OpenSslError("X509_CRL_set_issuer_name"));
  }
  E2EID_TRY(this_time, crypto::Asn1TimeFromTimePoint(this_update));
  E2EID_TRY(next_time, crypto::Asn1TimeFromTimePoint(next_update));
  if (X509_CRL_set1_lastUpdate(crl.get(), this_time.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_time.get()) != 1) {
    return Fail(OpenSslError("X509_CRL_set1_nextUpdate"));
  }
  crypto::Asn1IntegerPtr crl_number(ASN1_INTEGER_new());
  if (!crl_number || ASN1_INTEGER_set_int64(crl_number.get(), number) != 1) {
    return Fail(OpenSslError("ASN1_INTEGER_set_int64"));
  }
  if (X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, X509V3_ADD_DEFAULT) !=
      1) {
    return Fail(OpenSslError("X509_CRL_add1_ext_i2d crlNumber"));
  }
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(issuer);
  if (ski != nullptr) {
    crypto::AuthorityKeyIdPtr akid(AUTHORITY_KEYID_new());
    if (!akid) return Fail(OpenSslError("AUTHORITY_KEYID_new"));
    akid->keyid = ASN1_OCTET_STRING_dup(ski);
    if (akid->keyid == nullptr) return Fail(OpenSslError("ASN1_OCTET_STRING_dup"));
    if (X509_CRL_add1_ext_i2d(crl.get(), NID_authority_key_identifier, akid.get(), 0,
                              X509V3_ADD_DEFAULT) != 1) {
      return Fail(OpenSslError("X509_CRL_add1_ext_i2d authorityKeyIdentifier"));
    }
  } else {
    crypto::ClearOpenSslErrors();
  }
  const crypto::PrivateKey& key = ca.intermediate_key();
  if (X509_CRL_sign(crl.get(), key.get(), crypto::SignatureDigest(key.type())) <= 0) {
    return Fail(OpenSslError("X509_CRL_sign"));
  }
  unsigned char* raw = nullptr;
  const int len = i2d_X509_CRL(crl.get(), &raw);
  crypto::OpenSslBufferPtr owned(raw);
  if (len <= 0) return Fail(OpenSslError("i2d_X509_CRL"));
  return std::string(reinterpret_cast<const char*>(raw), static_cast<size_t>(len));
}

// PEM armour around DER that is known to be a CRL (we just built it): no parse.
std::string CrlPem(std::span<const uint8_t> der) {
  const std::string b64 = Base64Encode(der);
  std::string pem = "-----BEGIN X509 CRL-----\n";
  pem.reserve(b64.size() + b64.size() / 64 + 64);
  for (size_t i = 0; i < b64.size(); i += 64) {
    pem.append(b64, i, 64);
    pem += '\n';
  }
  pem += "-----END X509 CRL-----\n";
  return pem;
}

}  // namespace

Result<std::string> IssuerIdOf(const ca::CertificateAuthority& ca) {
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(ca.intermediate());
  if (ski == nullptr) {
    crypto::ClearOpenSslErrors();
    return Fail(Error::Internal("the intermediate certificate has no subjectKeyIdentifier"));
  }
  return HexEncode(std::span<const uint8_t>(ASN1_STRING_get0_data(ski),
                                            static_cast<size_t>(ASN1_STRING_length(ski))));
}

Result<std::vector<CrlEntry>> CollectCrlEntries(store::Transaction& tx, std::string_view issuer_id,
                                                TimePoint now) {
  std::vector<CrlEntry> out;
  store::PageRequest page;
  page.limit = store::kMaxPageLimit;
  for (;;) {
    E2EID_TRY(p, tx.ListCrlEntries(issuer_id, now, page));
    for (auto& e : p.items) {
      out.push_back(CrlEntry{std::move(e.serial), e.revoked_at, e.revocation_reason});
    }
    if (p.next.empty()) break;
    page.after = std::move(p.next);
  }
  return out;
}

Result<Bytes> SignCrl(const ca::CertificateAuthority& ca, std::span<const CrlEntry> entries,
                      int64_t number, TimePoint this_update, TimePoint next_update) {
  if (number < 0) return Fail(Error::InvalidArgument("negative CRL number"));
  if (next_update <= this_update) {
    return Fail(Error::InvalidArgument("CRL nextUpdate must be after thisUpdate"));
  }

  // The entries, validated, then sorted once by serial.
  std::vector<EncodedEntry> sorted(entries.size());
  std::map<TimePoint, uint32_t> time_index;
  std::vector<std::string> times;  // DER Time per distinct revocation time
  for (size_t i = 0; i < entries.size(); ++i) {
    const CrlEntry& e = entries[i];
    if (!SerialContent(e.serial_hex, &sorted[i])) {
      return Fail(Error::InvalidArgument("CRL entry with invalid serial '" + e.serial_hex + "'"));
    }
    if (!store::IsValidRevocationReason(e.reason)) {
      return Fail(Error::InvalidArgument("CRL entry " + e.serial_hex + " has invalid reason " +
                                         std::to_string(e.reason)));
    }
    sorted[i].reason = static_cast<uint8_t>(e.reason);
    auto [it, fresh] = time_index.emplace(e.revoked_at, static_cast<uint32_t>(times.size()));
    if (fresh) {
      E2EID_TRY(t, crypto::Asn1TimeFromTimePoint(e.revoked_at));
      unsigned char* raw = nullptr;
      const int len = i2d_ASN1_TIME(t.get(), &raw);
      crypto::OpenSslBufferPtr owned(raw);
      if (len <= 0) return Fail(OpenSslError("i2d_ASN1_TIME"));
      times.emplace_back(reinterpret_cast<const char*>(raw), static_cast<size_t>(len));
    }
    sorted[i].time = it->second;
  }
  std::sort(sorted.begin(), sorted.end(), SerialLess);

  // revokedCertificates: SEQUENCE OF SEQUENCE { userCertificate, revocationDate,
  // crlEntryExtensions }. The reasonCode extension is left out for "unspecified" (RFC 5280
  // §5.3.1); otherwise it is Extensions { Extension { id-ce-cRLReasons, OCTET STRING {
  // ENUMERATED } } }.
  std::string list;
  list.reserve(entries.size() * 48);
  std::string entry;
  for (const EncodedEntry& e : sorted) {
    entry.clear();
    AppendTlv(entry, 0x02,
              std::string_view(reinterpret_cast<const char*>(e.serial.data()), e.serial_len));
    entry += times[e.time];
    if (e.reason != 0) {
      const char ext[] = {0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55,
                          0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, static_cast<char>(e.reason)};
      entry.append(ext, sizeof ext);
    }
    AppendTlv(list, 0x30, entry);
  }

  // OpenSSL encodes everything else; the list goes between nextUpdate and the extensions.
  E2EID_TRY(skeleton, CrlSkeleton(ca, number, this_update, next_update));
  E2EID_TRY(outer, SequenceElements(skeleton));
  if (outer.size() != 3) return Fail(Error::Internal("unexpected CRL skeleton"));
  E2EID_TRY(tbs_elements, SequenceElements(outer[0]));
  std::string tbs_content;
  tbs_content.reserve(list.size() + 512);
  bool inserted = entries.empty();
  for (const std::string_view element : tbs_elements) {
    if (!inserted && static_cast<uint8_t>(element[0]) == 0xa0) {  // [0] crlExtensions
      AppendTlv(tbs_content, 0x30, list);
      inserted = true;
    }
    tbs_content.append(element);
  }
  if (!inserted) AppendTlv(tbs_content, 0x30, list);
  list.clear();
  list.shrink_to_fit();
  std::string tbs;
  tbs.reserve(tbs_content.size() + 8);
  AppendTlv(tbs, 0x30, tbs_content);
  tbs_content.clear();
  tbs_content.shrink_to_fit();

  // Sign the new TBSCertList with the algorithm the skeleton names.
  const crypto::PrivateKey& key = ca.intermediate_key();
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, crypto::SignatureDigest(key.type()), nullptr,
                                 key.get()) != 1) {
    return Fail(OpenSslError("EVP_DigestSignInit"));
  }
  const auto* tbs_bytes = reinterpret_cast<const unsigned char*>(tbs.data());
  size_t sig_len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &sig_len, tbs_bytes, tbs.size()) != 1) {
    return Fail(OpenSslError("EVP_DigestSign"));
  }
  std::string signature(sig_len + 1, '\0');  // BIT STRING: 0 unused bits, then the signature
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data() + 1), &sig_len,
                     tbs_bytes, tbs.size()) != 1) {
    return Fail(OpenSslError("EVP_DigestSign"));
  }
  signature.resize(sig_len + 1);
  std::string body = std::move(tbs);
  body.append(outer[1]);  // signatureAlgorithm
  AppendTlv(body, 0x03, signature);
  std::string crl;
  crl.reserve(body.size() + 8);
  AppendTlv(crl, 0x30, body);
  return Bytes(crl.begin(), crl.end());
}

Result<BuiltCrl> BuildCrl(const ca::CertificateAuthority& ca, store::Transaction& tx, TimePoint now,
                          std::chrono::seconds lifetime) {
  if (lifetime <= std::chrono::seconds(0)) {
    return Fail(Error::InvalidArgument("CRL lifetime must be positive"));
  }
  E2EID_TRY(issuer_id, IssuerIdOf(ca));
  E2EID_TRY(entries, CollectCrlEntries(tx, issuer_id, now));
  E2EID_TRY(number, tx.NextCrlNumber(issuer_id, now));
  BuiltCrl out;
  E2EID_TRY(der, SignCrl(ca, entries, number, now, now + lifetime));
  out.der = std::move(der);
  out.number = number;
  out.this_update = now;
  out.next_update = now + lifetime;
  out.entries = entries.size();
  return out;
}

Result<std::string> CrlDerToPem(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  crypto::X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl || p != der.data() + der.size()) {
    crypto::ClearOpenSslErrors();
    return Fail(Error::Malformed("not a DER CRL"));
  }
  E2EID_TRY(bio, crypto::NewMemBio());
  if (PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) {
    return Fail(OpenSslError("PEM_write_bio_X509_CRL"));
  }
  return crypto::BioToString(bio.get());
}

Status CrlOptions::Validate() const {
  if (lifetime < std::chrono::minutes(2)) {
    return Fail(Error::Config("CRL lifetime must be at least 2 minutes"));
  }
  if (max_age < std::chrono::seconds(0)) return Fail(Error::Config("CRL max-age is negative"));
  if (coalesce < std::chrono::milliseconds(0)) {
    return Fail(Error::Config("CRL coalesce delay is negative"));
  }
  if (retry < std::chrono::seconds(1)) {
    return Fail(Error::Config("CRL retry interval must be at least 1 second"));
  }
  return Ok();
}

// ---- CrlPublisher ---------------------------------------------------------------------------

CrlPublisher::CrlPublisher(const ca::CertificateAuthority& ca, store::Store& store,
                           const Clock& clock, CrlOptions options)
    : ca_(ca), store_(store), clock_(clock), options_(options) {}

CrlPublisher::~CrlPublisher() { Stop(); }

Status CrlPublisher::Start() {
  E2EID_CHECK_OK(options_.Validate());
  {
    std::lock_guard lock(mu_);
    if (thread_.joinable()) return Fail(Error::Internal("the CRL publisher is already running"));
    stop_ = false;
  }
  E2EID_CHECK_OK(Rebuild());
  std::lock_guard lock(mu_);
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    return Fail(Error::Internal(std::string("starting the CRL publisher thread: ") + e.what()));
  }
  return Ok();
}

void CrlPublisher::Stop() {
  std::thread t;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    t = std::move(thread_);
  }
  wake_cv_.notify_all();
  if (t.joinable()) t.join();
}

void CrlPublisher::OnRevoked(const RevocationOutcome& outcome) {
  if (outcome.affected == 0) return;
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  wake_cv_.notify_all();
}

Status CrlPublisher::Rebuild() {
  std::lock_guard build(build_mu_);
  const TimePoint now = clock_.Now();
  E2EID_TRY(issuer_id, IssuerIdOf(ca_));
  std::vector<CrlEntry> entries;
  E2EID_CHECK_OK(store_.ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(e, CollectCrlEntries(tx, issuer_id, now));
    entries = std::move(e);
    return Ok();
  }));
  int64_t number = 0;
  E2EID_CHECK_OK(store_.InTransaction([&](store::Transaction& tx) -> Status {
    E2EID_TRY(n, tx.NextCrlNumber(issuer_id, now));
    number = n;
    return Ok();
  }));
  auto crl = std::make_shared<PublishedCrl>();
  E2EID_TRY(der, SignCrl(ca_, entries, number, now, now + options_.lifetime));
  crl->pem = CrlPem(der);
  crl->der = std::move(der);
  crl->number = number;
  crl->this_update = now;
  crl->next_update = now + options_.lifetime;
  crl->entries = entries.size();
  LogInfo("CRL published", {{"number", number},
                            {"entries", crl->entries},
                            {"bytes", crl->der.size()},
                            {"next_update", FormatRfc3339(crl->next_update)}});
  {
    std::lock_guard lock(mu_);
    current_ = std::move(crl);
  }
  published_cv_.notify_all();
  return Ok();
}

std::shared_ptr<const PublishedCrl> CrlPublisher::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

int64_t CrlPublisher::WaitForNumberAbove(int64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  published_cv_.wait_for(lock, timeout, [&] { return current_ && current_->number > after; });
  return current_ ? current_->number : 0;
}

void CrlPublisher::Run() {
  using Steady = std::chrono::steady_clock;
  std::unique_lock lock(mu_);
  std::optional<Steady::time_point> retry_at;
  while (!stop_) {
    bool due = dirty_;
    if (retry_at) {
      due = due || Steady::now() >= *retry_at;
    } else if (current_) {
      due = due || clock_.Now() >= current_->this_update + options_.lifetime / 2;
    }
    if (!due) {
      // The Clock may be a FakeClock: look at it again every second.
      wake_cv_.wait_for(lock, std::chrono::seconds(1));
      continue;
    }
    if (dirty_ && options_.coalesce > std::chrono::milliseconds(0)) {
      if (wake_cv_.wait_for(lock, options_.coalesce, [&] { return stop_; })) break;
    }
    dirty_ = false;
    lock.unlock();
    Status st = Rebuild();
    lock.lock();
    if (st) {
      retry_at.reset();
    } else {
      LogError("CRL build failed; serving the previous CRL",
               {{"error", st.error().ToString()}, {"retry_in_s", options_.retry.count()}});
      retry_at = Steady::now() + options_.retry;
    }
  }
}

Result<HttpResponse> CrlPublisher::HandleCrl(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") return MethodNotAllowed("GET, HEAD");
  bool pem = false;
  if (auto format = QueryParam(request.query, "format")) {
    if (*format == "pem") {
      pem = true;
    } else if (*format != "der") {
      return Fail(Error::InvalidArgument("unknown CRL format (accepted: der, pem)"));
    }
  } else if (auto accept = request.Header("Accept")) {
    pem = accept->find("application/x-pem-file") != std::string::npos &&
          accept->find("application/pkix-crl") == std::string::npos;
  }
  auto crl = Current();
  if (!crl) return Fail(Error::Unavailable("no CRL has been built yet"));
  const TimePoint now = clock_.Now();
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(crl->next_update - now);
  const auto max_age = std::clamp(left, std::chrono::seconds(0), options_.max_age);
  const std::string etag = "\"" + std::to_string(crl->number) + (pem ? "-pem" : "-der") + "\"";

  HttpResponse r;
  r.status = 200;
  r.SetHeader("Cache-Control", "public, max-age=" + std::to_string(max_age.count()));
  r.SetHeader("ETag", etag);
  r.SetHeader("Last-Modified", HttpDate(crl->this_update));
  r.SetHeader("Vary", "Accept");
  if (IfNoneMatchHits(request.Header("If-None-Match"), etag)) {
    r.status = 304;
    return r;
  }
  if (pem) {
    r.SetHeader("Content-Type", "application/x-pem-file");
    r.body = crl->pem;
  } else {
    r.SetHeader("Content-Type", "application/pkix-crl");
    r.body.assign(crl->der.begin(), crl->der.end());
  }
  return r;
}

}  // namespace e2eid::revocation
