#include "revocation/ocsp.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "core/json.h"
#include "revocation/service.h"
#include "revocation/test_fixture.h"

namespace e2eid::revocation {
namespace {

using store::RevocationScopeKind;
using testing::ReadText;
using testing::RunCommand;
using testing::ShellQuote;
using testing::WriteText;

constexpr int kKeyCompromise = 1;

struct Status1 {
  int status = -2;  // V_OCSP_CERTSTATUS_*
  int reason = -2;
  std::optional<TimePoint> revoked_at;
  TimePoint this_update{};
  TimePoint next_update{};
};

class OcspTest : public testing::RevocationFixture {
 protected:
  void SetUp() override {
    RevocationFixture::SetUp();
    auto r = OcspResponder::Create(*ca_, *issuer_, *store_, clock_, Options());
    ASSERT_TRUE(r) << r.error().ToString();
    responder_ = std::move(*r);
    service_ = std::make_unique<RevocationService>(*store_, clock_);
    service_->AddListener(responder_.get());
  }

  virtual OcspOptions Options() { return {}; }

  void Revoke(RevocationScopeKind kind, const std::string& value, int reason) {
    RevocationRequest r;
    r.kind = kind;
    r.value = value;
    r.reason = reason;
    r.actor = "cli";
    r.source = "cli";
    auto out = service_->Revoke(r);
    ASSERT_TRUE(out) << out.error().ToString();
  }

  // An OCSP request made by the openssl CLI (`args` name the certificate(s)).
  std::string CliRequest(const std::string& args) {
    const std::string out = tmp_ / "req.der";
    auto r = RunCommand("openssl ocsp -issuer " + ShellQuote(paths_.intermediate_cert) + " " +
                        args + " -reqout " + ShellQuote(out) + " -no_nonce");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return ReadText(out);
  }

  // The openssl CLI's reading of a response: verification and the status text.
  std::string CliCheck(const std::string& response, const std::string& args) {
    const std::string in = tmp_ / "resp.der";
    WriteText(in, response);
    auto r = RunCommand("openssl ocsp -respin " + ShellQuote(in) + " -issuer " +
                        ShellQuote(paths_.intermediate_cert) + " " + args + " -CAfile " +
                        ShellQuote(paths_.root_cert) + " -verify_other " +
                        ShellQuote(paths_.intermediate_cert) + " -no_nonce -resp_text");
    return r.output;
  }

  HttpResponse Post(std::string body) {
    HttpRequest r;
    r.method = "POST";
    r.path = r.target = "/ocsp";
    r.headers.emplace_back("Content-Type", "application/ocsp-request");
    r.body = std::move(body);
    auto out = responder_->HandleOcsp(r);
    EXPECT_TRUE(out) << out.error().ToString();
    EXPECT_EQ(out->status, 200);
    EXPECT_EQ(out->Header("Content-Type"), "application/ocsp-response");
    return *out;
  }

  HttpResponse Get(const std::string& encoded, HttpHeaders headers = {}) {
    HttpRequest r;
    r.method = "GET";
    r.path = r.target = "/ocsp/" + encoded;
    r.headers = std::move(headers);
    auto out = responder_->HandleOcsp(r);
    EXPECT_TRUE(out) << out.error().ToString();
    return *out;
  }

  crypto::X509Ptr LoadCert(const std::string& pem) {
    auto c = ca::CertificateFromPem(pem);
    EXPECT_TRUE(c);
    return std::move(*c);
  }

  // A request built with the OpenSSL API.
  crypto::OcspRequestPtr ApiRequest(const std::vector<const testing::Leaf*>& leaves,
                                    const EVP_MD* md = EVP_sha1(), X509* issuer = nullptr) {
    crypto::OcspRequestPtr req(OCSP_REQUEST_new());
    for (const auto* leaf : leaves) {
      auto cert = LoadCert(leaf->pem);
      OCSP_CERTID* id =
          OCSP_cert_to_id(md, cert.get(), issuer != nullptr ? issuer : ca_->intermediate());
      EXPECT_NE(id, nullptr);
      EXPECT_NE(OCSP_request_add0_id(req.get(), id), nullptr);
    }
    return req;
  }

  static std::string Der(OCSP_REQUEST* req) {
    unsigned char* raw = nullptr;
    const int len = i2d_OCSP_REQUEST(req, &raw);
    crypto::OpenSslBufferPtr owned(raw);
    return std::string(reinterpret_cast<char*>(raw), static_cast<size_t>(len));
  }

  static int ResponseStatus(const std::string& der) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    crypto::OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
    if (!resp) return -1;
    return OCSP_response_status(resp.get());
  }

  static crypto::OcspBasicRespPtr Basic(const std::string& der) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    crypto::OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
    if (!resp) return nullptr;
    return crypto::OcspBasicRespPtr(OCSP_response_get1_basic(resp.get()));
  }

  // The status of `leaf` in a response (CertID with `md`, issued by the intermediate).
  Status1 StatusOf(OCSP_BASICRESP* bs, const testing::Leaf& leaf, const EVP_MD* md = EVP_sha1()) {
    Status1 s;
    auto cert = LoadCert(leaf.pem);
    crypto::OcspCertIdPtr id(OCSP_cert_to_id(md, cert.get(), ca_->intermediate()));
    ASN1_GENERALIZEDTIME* rev = nullptr;
    ASN1_GENERALIZEDTIME* thisupd = nullptr;
    ASN1_GENERALIZEDTIME* nextupd = nullptr;
    if (OCSP_resp_find_status(bs, id.get(), &s.status, &s.reason, &rev, &thisupd, &nextupd) != 1) {
      return s;
    }
    if (rev != nullptr) s.revoked_at = *crypto::Asn1TimeToTimePoint(rev);
    s.this_update = *crypto::Asn1TimeToTimePoint(thisupd);
    s.next_update = *crypto::Asn1TimeToTimePoint(nextupd);
    return s;
  }

  // Verifies the response signature and the responder's chain up to the root (API).
  bool VerifyWithApi(OCSP_BASICRESP* bs) {
    crypto::X509StorePtr store(X509_STORE_new());
    X509_STORE_add_cert(store.get(), ca_->root());
    crypto::X509StackPtr untrusted(sk_X509_new_null());
    X509_up_ref(ca_->intermediate());
    sk_X509_push(untrusted.get(), ca_->intermediate());
    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store.get()), ToUnix(clock_.Now()));
    return OCSP_basic_verify(bs, untrusted.get(), store.get(), 0) == 1;
  }

  std::unique_ptr<OcspResponder> responder_;
  std::unique_ptr<RevocationService> service_;
};

TEST_F(OcspTest, OpensslClientSeesGoodRevokedAndUnknown) {
  const auto good = IssueLeaf("alice", "dev-a");
  const auto revoked = IssueLeaf("alice", "dev-b");
  Revoke(RevocationScopeKind::kDevice, "dev-b", kKeyCompromise);

  const std::string good_args = "-cert " + ShellQuote(good.path);
  auto out = CliCheck(Post(CliRequest(good_args)).body, good_args);
  EXPECT_NE(out.find("Response verify OK"), std::string::npos) << out;
  EXPECT_NE(out.find(good.path + ": good"), std::string::npos) << out;
  EXPECT_NE(out.find("OCSP Response Status: successful"), std::string::npos) << out;

  const std::string revoked_args = "-cert " + ShellQuote(revoked.path);
  out = CliCheck(Post(CliRequest(revoked_args)).body, revoked_args);
  EXPECT_NE(out.find("Response verify OK"), std::string::npos) << out;
  EXPECT_NE(out.find(revoked.path + ": revoked"), std::string::npos) << out;
  EXPECT_NE(out.find("Reason: keyCompromise"), std::string::npos) << out;
  EXPECT_NE(out.find("Revocation Time"), std::string::npos) << out;

  const std::string unknown_args = "-serial 0x1234abcd";
  out = CliCheck(Post(CliRequest(unknown_args)).body, unknown_args);
  EXPECT_NE(out.find("Response verify OK"), std::string::npos) << out;
  EXPECT_NE(out.find("0x1234abcd: unknown"), std::string::npos) << out;
}

TEST_F(OcspTest, ResponseStructure) {
  const auto good = IssueLeaf("alice", "dev-a");
  auto req = ApiRequest({&good});
  auto bs = Basic(Post(Der(req.get())).body);
  ASSERT_TRUE(bs);
  EXPECT_TRUE(VerifyWithApi(bs.get()));
  const Status1 s = StatusOf(bs.get(), good);
  EXPECT_EQ(s.status, V_OCSP_CERTSTATUS_GOOD);
  EXPECT_EQ(s.this_update, clock_.Now());
  EXPECT_EQ(s.next_update, clock_.Now() + std::chrono::hours(1));

  // responderID byKey, the responder certificate included and issued for OCSP signing.
  const ASN1_OCTET_STRING* key_id = nullptr;
  const X509_NAME* name = nullptr;
  ASSERT_EQ(OCSP_resp_get0_id(bs.get(), &key_id, &name), 1);
  EXPECT_NE(key_id, nullptr);
  EXPECT_EQ(name, nullptr);
  const STACK_OF(X509)* certs = OCSP_resp_get0_certs(bs.get());
  ASSERT_EQ(sk_X509_num(certs), 1);
  X509* signer = sk_X509_value(certs, 0);
  auto current = LoadCert(responder_->responder_certificate_pem());
  EXPECT_EQ(X509_cmp(signer, current.get()), 0);
  EXPECT_NE(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN, 0u);
  EXPECT_GE(X509_get_ext_by_NID(signer, NID_id_pkix_OCSP_noCheck, -1), 0);
  EXPECT_EQ(X509_check_issued(ca_->intermediate(), signer), X509_V_OK);

  // Its issuance is audited.
  bool audited = false;
  for (const auto& e : Audits()) {
    if (e.action == "certificate.issue" && e.details.find("ocsp-responder") != std::string::npos) {
      audited = true;
    }
  }
  EXPECT_TRUE(audited);
  EXPECT_EQ(responder_->stats().responder_certificates, 1u);
}

TEST_F(OcspTest, RevokedDetailsAndUnspecifiedReason) {
  const auto a = IssueLeaf("alice", "dev-a");
  const auto b = IssueLeaf("alice", "dev-b");
  const TimePoint when = clock_.Now();
  Revoke(RevocationScopeKind::kCertificate, a.record.serial, 0);
  Revoke(RevocationScopeKind::kCertificate, b.record.serial, 9);
  clock_.Advance(std::chrono::seconds(30));
  auto bs = Basic(Post(Der(ApiRequest({&a, &b}).get())).body);
  ASSERT_TRUE(bs);
  EXPECT_EQ(OCSP_resp_count(bs.get()), 2);
  const Status1 sa = StatusOf(bs.get(), a);
  EXPECT_EQ(sa.status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(sa.reason, OCSP_REVOKED_STATUS_NOSTATUS);  // unspecified is left out
  EXPECT_EQ(sa.revoked_at, when);
  const Status1 sb = StatusOf(bs.get(), b);
  EXPECT_EQ(sb.status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(sb.reason, 9);  // privilegeWithdrawn
}

TEST_F(OcspTest, CertIdHashesMustBeTheIntermediates) {
  const auto good = IssueLeaf("alice", "dev-a");
  // SHA-256 CertIDs are accepted and echoed.
  auto bs = Basic(Post(Der(ApiRequest({&good}, EVP_sha256()).get())).body);
  ASSERT_TRUE(bs);
  EXPECT_EQ(StatusOf(bs.get(), good, EVP_sha256()).status, V_OCSP_CERTSTATUS_GOOD);

  // The same serial under another issuer (the root) is not ours: unknown.
  auto other = Basic(Post(Der(ApiRequest({&good}, EVP_sha1(), ca_->root()).get())).body);
  ASSERT_TRUE(other);
  int status = -2;
  int reason = -2;
  auto cert = LoadCert(good.pem);
  crypto::OcspCertIdPtr id(OCSP_cert_to_id(EVP_sha1(), cert.get(), ca_->root()));
  ASSERT_EQ(
      OCSP_resp_find_status(other.get(), id.get(), &status, &reason, nullptr, nullptr, nullptr), 1);
  EXPECT_EQ(status, V_OCSP_CERTSTATUS_UNKNOWN);

  // A certificate row of another issuer is unknown too.
  InsertFakeCertificate("abcdef", "bob", clock_.Now() + std::chrono::hours(1), "0102");
  const std::string args = "-serial 0xabcdef";
  auto out = CliCheck(Post(CliRequest(args)).body, args);
  EXPECT_NE(out.find("0xabcdef: unknown"), std::string::npos) << out;
}

TEST_F(OcspTest, NonceIsEchoedAndBoundedToo) {
  const auto good = IssueLeaf("alice", "dev-a");
  auto req = ApiRequest({&good});
  ASSERT_EQ(OCSP_request_add1_nonce(req.get(), nullptr, 32), 1);
  auto bs = Basic(Post(Der(req.get())).body);
  ASSERT_TRUE(bs);
  EXPECT_EQ(OCSP_check_nonce(req.get(), bs.get()), 1);
  // Nonced responses are never cached: a second request with another nonce gets its own.
  auto req2 = ApiRequest({&good});
  ASSERT_EQ(OCSP_request_add1_nonce(req2.get(), nullptr, 16), 1);
  auto bs2 = Basic(Post(Der(req2.get())).body);
  ASSERT_TRUE(bs2);
  EXPECT_EQ(OCSP_check_nonce(req2.get(), bs2.get()), 1);
  EXPECT_EQ(responder_->stats().cache_hits, 0u);

  auto too_long = ApiRequest({&good});
  ASSERT_EQ(OCSP_request_add1_nonce(too_long.get(), nullptr, 33), 1);
  EXPECT_EQ(ResponseStatus(Post(Der(too_long.get())).body), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);

  // The openssl CLI's default request carries a nonce; its check passes.
  const std::string in = tmp_ / "nonce-req.der";
  auto made = RunCommand("openssl ocsp -issuer " + ShellQuote(paths_.intermediate_cert) +
                         " -cert " + ShellQuote(good.path) + " -reqout " + ShellQuote(in));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  WriteText(tmp_ / "nonce-resp.der", Post(ReadText(in)).body);
  // (No -cert here: with -cert the CLI builds a new request with a new nonce.)
  auto checked =
      RunCommand("openssl ocsp -reqin " + ShellQuote(in) + " -respin " +
                 ShellQuote(tmp_ / "nonce-resp.der") + " -CAfile " + ShellQuote(paths_.root_cert) +
                 " -verify_other " + ShellQuote(paths_.intermediate_cert) + " -resp_text");
  EXPECT_NE(checked.output.find("Response verify OK"), std::string::npos) << checked.output;
  EXPECT_EQ(checked.output.find("WARNING"), std::string::npos) << checked.output;
  EXPECT_EQ(checked.output.find("Nonce Verify error"), std::string::npos) << checked.output;
  EXPECT_NE(checked.output.find("OCSP Nonce"), std::string::npos) << checked.output;
}

TEST_F(OcspTest, MalformedRequestsGetMalformedRequest) {
  const auto good = IssueLeaf("alice", "dev-a");
  for (const std::string& body :
       {std::string(), std::string("not DER"), std::string("\x30\x03\x02\x01\x01", 5),
        Der(ApiRequest({&good}).get()) + "x"}) {
    const auto r = Post(body);
    EXPECT_EQ(ResponseStatus(r.body), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    EXPECT_EQ(r.body, std::string("\x30\x03\x0a\x01\x01", 5));
  }
  // Over 4 KiB.
  std::vector<const testing::Leaf*> many;
  std::vector<testing::Leaf> leaves;
  for (int i = 0; i < 9; ++i) leaves.push_back(IssueLeaf("alice", "dev-a"));
  for (const auto& l : leaves) many.push_back(&l);
  EXPECT_EQ(ResponseStatus(Post(Der(ApiRequest(many).get())).body),
            OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);  // 9 > max_certids
  many.resize(8);
  EXPECT_EQ(ResponseStatus(Post(Der(ApiRequest(many).get())).body),
            OCSP_RESPONSE_STATUS_SUCCESSFUL);
  std::string big = Der(ApiRequest({&good}).get());
  big.resize(5000, '\0');
  EXPECT_EQ(ResponseStatus(Post(big).body), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);

  // An unknown critical request extension.
  auto crit = ApiRequest({&good});
  crypto::Asn1OctetStringPtr value(ASN1_OCTET_STRING_new());
  ASN1_OCTET_STRING_set(value.get(), reinterpret_cast<const unsigned char*>("\x05\x00"), 2);
  crypto::X509ExtensionPtr ext(
      X509_EXTENSION_create_by_NID(nullptr, NID_id_pkix_OCSP_CrlID, 1, value.get()));
  ASSERT_TRUE(ext);
  ASSERT_EQ(OCSP_REQUEST_add_ext(crit.get(), ext.get(), -1), 1);
  EXPECT_EQ(ResponseStatus(Post(Der(crit.get())).body), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
  EXPECT_GE(responder_->stats().malformed, 7u);

  HttpRequest put;
  put.method = "PUT";
  put.path = "/ocsp";
  auto refused = responder_->HandleOcsp(put);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 405);
  EXPECT_EQ(refused->Header("Allow"), "GET, POST");
}

std::string PercentEncode(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '+' || c == '/' || c == '=') {
      static const char* kHex = "0123456789ABCDEF";
      out += '%';
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

TEST_F(OcspTest, GetRequestsAndHttpCaching) {
  const auto good = IssueLeaf("alice", "dev-a");
  const std::string der = Der(ApiRequest({&good}).get());
  const std::string b64 = Base64Encode(AsBytes(der));

  const auto r = Get(PercentEncode(b64));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Content-Type"), "application/ocsp-response");
  EXPECT_EQ(r.Header("Cache-Control"), "public, max-age=60, no-transform, must-revalidate");
  ASSERT_TRUE(r.Header("ETag"));
  EXPECT_TRUE(r.Header("Last-Modified"));
  auto bs = Basic(r.body);
  ASSERT_TRUE(bs);
  EXPECT_EQ(StatusOf(bs.get(), good).status, V_OCSP_CERTSTATUS_GOOD);

  // Unpadded, raw '/' and '+', base64url: the same response (from the cache).
  std::string unpadded = b64;
  while (unpadded.ends_with('=')) unpadded.pop_back();
  EXPECT_EQ(Get(unpadded).body, r.body);
  EXPECT_EQ(Get(Base64UrlEncode(AsBytes(der))).body, r.body);

  // If-None-Match: 304.
  const auto cached = Get(PercentEncode(b64), {{"If-None-Match", *r.Header("ETag")}});
  EXPECT_EQ(cached.status, 304);
  EXPECT_TRUE(cached.body.empty());

  // Garbage: malformedRequest, not cacheable.
  for (const std::string& bad : {std::string("!!!"), std::string("%zz"), std::string("")}) {
    const auto m = Get(bad);
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(ResponseStatus(m.body), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    EXPECT_EQ(m.Header("Cache-Control"), "no-store");
  }
}

TEST_F(OcspTest, CacheIsClearedByRevocation) {
  const auto leaf = IssueLeaf("alice", "dev-a");
  const std::string der = Der(ApiRequest({&leaf}).get());
  const std::string first = Post(der).body;
  EXPECT_EQ(Post(der).body, first);
  EXPECT_EQ(responder_->stats().cache_hits, 1u);

  Revoke(RevocationScopeKind::kUser, "alice", kKeyCompromise);
  auto bs = Basic(Post(der).body);
  ASSERT_TRUE(bs);
  EXPECT_EQ(StatusOf(bs.get(), leaf).status, V_OCSP_CERTSTATUS_REVOKED);
  EXPECT_EQ(responder_->stats().cache_hits, 1u);

  // A cached response is rebuilt after half of its validity.
  const std::string revoked = Post(der).body;
  EXPECT_EQ(responder_->stats().cache_hits, 2u);
  clock_.Advance(std::chrono::minutes(31));
  auto fresh = Basic(Post(der).body);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(StatusOf(fresh.get(), leaf).this_update, clock_.Now());
  EXPECT_EQ(responder_->stats().cache_hits, 2u);
}

TEST_F(OcspTest, ResponderCertificateIsRenewedAtHalfLife) {
  const auto leaf = IssueLeaf("alice", "dev-a");
  const std::string first_pem = responder_->responder_certificate_pem();
  ASSERT_TRUE(responder_->RenewIfDue());
  EXPECT_EQ(responder_->responder_certificate_pem(), first_pem);

  clock_.Advance(std::chrono::hours(24 * 3 + 13));  // past half of 7 days
  auto bs = Basic(Post(Der(ApiRequest({&leaf}).get())).body);
  ASSERT_TRUE(bs);
  const std::string second_pem = responder_->responder_certificate_pem();
  EXPECT_NE(second_pem, first_pem);
  EXPECT_EQ(responder_->stats().responder_certificates, 2u);
  auto second = LoadCert(second_pem);
  EXPECT_EQ(X509_cmp(sk_X509_value(OCSP_resp_get0_certs(bs.get()), 0), second.get()), 0);
  EXPECT_TRUE(VerifyWithApi(bs.get()));
}

class UncachedOcspTest : public OcspTest {
 protected:
  OcspOptions Options() override {
    OcspOptions o;
    o.max_cache_entries = 0;
    return o;
  }
};

TEST_F(UncachedOcspTest, WithoutCacheEveryResponseIsFresh) {
  const auto leaf = IssueLeaf("alice", "dev-a");
  const std::string der = Der(ApiRequest({&leaf}).get());
  Post(der);
  Post(der);
  EXPECT_EQ(responder_->stats().cache_hits, 0u);
  EXPECT_EQ(responder_->stats().requests, 2u);
}

TEST(OcspOptionsTest, Validate) {
  EXPECT_TRUE(OcspOptions{}.Validate());
  OcspOptions o;
  o.next_update = std::chrono::seconds(10);
  EXPECT_EQ(o.Validate().error().code(), ErrorCode::kConfig);
  o = {};
  o.path_prefix = "/ocsp";
  EXPECT_FALSE(o.Validate());
  o = {};
  o.max_certids = 0;
  EXPECT_FALSE(o.Validate());
  o = {};
  o.responder_validity = std::chrono::minutes(5);
  EXPECT_FALSE(o.Validate());
}

}  // namespace
}  // namespace e2eid::revocation
