#include "revocation/crl.h"

#include <gtest/gtest.h>

#include <chrono>

#include "revocation/service.h"
#include "revocation/test_fixture.h"

namespace e2eid::revocation {
namespace {

using store::RevocationScopeKind;
using testing::RunCommand;
using testing::ShellQuote;
using testing::WriteText;

constexpr auto kWait = std::chrono::seconds(20);  // upper bound for event waits, never slept

crypto::X509CrlPtr ParseCrl(const Bytes& der) {
  const unsigned char* p = der.data();
  return crypto::X509CrlPtr(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
}

// The revoked entry for `serial_hex`, or nullptr.
X509_REVOKED* Find(X509_CRL* crl, const std::string& serial_hex) {
  auto bytes = HexDecode(serial_hex.size() % 2 ? "0" + serial_hex : serial_hex);
  if (!bytes) return nullptr;
  auto serial = crypto::Asn1IntegerFromBytes(*bytes);
  if (!serial) return nullptr;
  X509_REVOKED* rev = nullptr;
  // 2 means "found, reason removeFromCRL".
  if (X509_CRL_get0_by_serial(crl, &rev, serial->get()) <= 0) return nullptr;
  return rev;
}

// The reasonCode of an entry, or -1 when it has none.
int ReasonOf(X509_REVOKED* rev) {
  crypto::Asn1EnumeratedPtr code(static_cast<ASN1_ENUMERATED*>(
      X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, nullptr, nullptr)));
  return code ? static_cast<int>(ASN1_ENUMERATED_get(code.get())) : -1;
}

int64_t CrlNumberOf(X509_CRL* crl) {
  crypto::Asn1IntegerPtr n(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr)));
  return n ? ASN1_INTEGER_get(n.get()) : -1;
}

class CrlTest : public testing::RevocationFixture {
 protected:
  Result<BuiltCrl> Build() {
    Result<BuiltCrl> out = Fail(Error::Internal("not run"));
    auto st = store_->InTransaction([&](store::Transaction& tx) -> Status {
      out = BuildCrl(*ca_, tx, clock_.Now(), std::chrono::hours(1));
      if (!out) return Fail(out.error());
      return Ok();
    });
    if (!st) return Fail(st.error());
    return out;
  }

  void Revoke(const std::string& serial, int reason) {
    RevocationService service(*store_, clock_);
    RevocationRequest r;
    r.kind = RevocationScopeKind::kCertificate;
    r.value = serial;
    r.reason = reason;
    r.actor = "cli";
    r.source = "cli";
    auto out = service.Revoke(r);
    ASSERT_TRUE(out) << out.error().ToString();
  }

  std::string WritePem(const Bytes& der, const std::string& name) {
    auto pem = CrlDerToPem(der);
    EXPECT_TRUE(pem) << pem.error().ToString();
    const std::string path = tmp_ / name;
    WriteText(path, *pem);
    return path;
  }

  // openssl verify of a leaf with CRL checking of the leaf.
  e2eid::testing::CommandResult Verify(const std::string& leaf_path, const std::string& crl_path) {
    return RunCommand("openssl verify -crl_check -CRLfile " + ShellQuote(crl_path) + " -CAfile " +
                      ShellQuote(paths_.root_cert) + " -untrusted " +
                      ShellQuote(paths_.intermediate_cert) + " " + ShellQuote(leaf_path));
  }
};

TEST_F(CrlTest, EmptyCrlIsAValidV2Crl) {
  auto crl = Build();
  ASSERT_TRUE(crl) << crl.error().ToString();
  EXPECT_EQ(crl->number, 1);
  EXPECT_EQ(crl->entries, 0u);
  EXPECT_EQ(crl->next_update, crl->this_update + std::chrono::hours(1));
  const std::string path = WritePem(crl->der, "empty.pem");
  auto text = RunCommand("openssl crl -in " + ShellQuote(path) + " -noout -text");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("Version 2 (0x1)"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("X509v3 CRL Number"), std::string::npos);
  EXPECT_NE(text.output.find("X509v3 Authority Key Identifier"), std::string::npos);
  EXPECT_NE(text.output.find("No Revoked Certificates"), std::string::npos);
  EXPECT_NE(text.output.find("ecdsa-with-SHA256"), std::string::npos);
  // Signed by the intermediate.
  WriteText(tmp_ / "chain.pem", ca_->chain_pem());
  auto verify = RunCommand("openssl crl -in " + ShellQuote(path) + " -noout -CAfile " +
                           ShellQuote(tmp_ / "chain.pem"));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("verify OK"), std::string::npos) << verify.output;

  auto parsed = ParseCrl(crl->der);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(
      X509_NAME_cmp(X509_CRL_get_issuer(parsed.get()), X509_get_subject_name(ca_->intermediate())),
      0);
  EXPECT_EQ(X509_CRL_verify(parsed.get(), X509_get0_pubkey(ca_->intermediate())), 1);
}

TEST_F(CrlTest, ListsRevokedUnexpiredCertificatesWithReasons) {
  const auto compromised = IssueLeaf("alice", "dev-a");
  const auto unspecified = IssueLeaf("alice", "dev-b");
  const auto good = IssueLeaf("bob", "dev-c");
  Revoke(compromised.record.serial, 1);
  Revoke(unspecified.record.serial, 0);
  // An expired revoked certificate drops off; one of another issuer is not ours; one without an
  // issuer id is listed.
  InsertFakeCertificate("e1", "carol", clock_.Now() - std::chrono::seconds(1), issuer_id_);
  InsertFakeCertificate("f1", "carol", clock_.Now() + std::chrono::hours(1), "00ff");
  InsertFakeCertificate("f2", "carol", clock_.Now() + std::chrono::hours(1), "");
  Revoke("e1", 4);
  Revoke("f1", 4);
  Revoke("f2", 4);

  auto crl = Build();
  ASSERT_TRUE(crl) << crl.error().ToString();
  EXPECT_EQ(crl->entries, 3u);
  auto parsed = ParseCrl(crl->der);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(CrlNumberOf(parsed.get()), crl->number);
  X509_REVOKED* a = Find(parsed.get(), compromised.record.serial);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(ReasonOf(a), 1);
  auto when = crypto::Asn1TimeToTimePoint(X509_REVOKED_get0_revocationDate(a));
  ASSERT_TRUE(when);
  EXPECT_EQ(*when, clock_.Now());
  X509_REVOKED* b = Find(parsed.get(), unspecified.record.serial);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(ReasonOf(b), -1);  // RFC 5280 §5.3.1: no reasonCode for unspecified
  EXPECT_EQ(Find(parsed.get(), good.record.serial), nullptr);
  EXPECT_EQ(Find(parsed.get(), "e1"), nullptr);
  EXPECT_EQ(Find(parsed.get(), "f1"), nullptr);
  X509_REVOKED* f2 = Find(parsed.get(), "f2");
  ASSERT_NE(f2, nullptr);
  EXPECT_EQ(ReasonOf(f2), 4);

  const std::string path = WritePem(crl->der, "crl.pem");
  auto text = RunCommand("openssl crl -in " + ShellQuote(path) + " -noout -text");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("Key Compromise"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("Superseded"), std::string::npos) << text.output;

  // openssl verify: the revoked leaf fails, the good one passes.
  auto revoked = Verify(compromised.path, path);
  EXPECT_NE(revoked.exit_code, 0) << revoked.output;
  EXPECT_NE(revoked.output.find("certificate revoked"), std::string::npos) << revoked.output;
  auto ok = Verify(good.path, path);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

TEST_F(CrlTest, NumbersIncreaseAndARolledBackBuildGivesItsNumberBack) {
  auto first = Build();
  ASSERT_TRUE(first);
  auto second = Build();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->number, first->number + 1);
  auto st = store_->InTransaction([&](store::Transaction& tx) -> Status {
    auto crl = BuildCrl(*ca_, tx, clock_.Now(), std::chrono::hours(1));
    EXPECT_TRUE(crl);
    return Fail(Error::Internal("roll back"));
  });
  ASSERT_FALSE(st);
  auto third = Build();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->number, second->number + 1);
}

TEST_F(CrlTest, SignCrlSortsEntriesAndRejectsBadInput) {
  std::vector<CrlEntry> entries = {
      {"ff", clock_.Now(), 1}, {"1", clock_.Now(), 0}, {"abc", clock_.Now(), 9}};
  auto der = SignCrl(*ca_, entries, 7, clock_.Now(), clock_.Now() + std::chrono::hours(1));
  ASSERT_TRUE(der) << der.error().ToString();
  auto parsed = ParseCrl(*der);
  ASSERT_TRUE(parsed);
  const auto* revoked = X509_CRL_get_REVOKED(parsed.get());
  ASSERT_EQ(sk_X509_REVOKED_num(revoked), 3);
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    auto bytes = crypto::Asn1IntegerToBytes(
        X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)));
    ASSERT_TRUE(bytes);
    order.push_back(HexEncode(*bytes));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"01", "ff", "0abc"}));
  EXPECT_EQ(CrlNumberOf(parsed.get()), 7);

  const TimePoint now = clock_.Now();
  EXPECT_EQ(
      SignCrl(*ca_, std::vector<CrlEntry>{{"XYZ", now, 0}}, 1, now, now + std::chrono::hours(1))
          .error()
          .code(),
      ErrorCode::kInvalidArgument);
  EXPECT_EQ(
      SignCrl(*ca_, std::vector<CrlEntry>{{"12", now, 7}}, 1, now, now + std::chrono::hours(1))
          .error()
          .code(),
      ErrorCode::kInvalidArgument);
  EXPECT_EQ(SignCrl(*ca_, {}, 1, now, now).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(SignCrl(*ca_, {}, -1, now, now + std::chrono::hours(1)).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(CrlDerToPem(AsBytes("not a crl")));
}

// The directly encoded entry list must be exactly what OpenSSL's encoder produces.
TEST_F(CrlTest, EncodingEqualsOpensslsReencoding) {
  const TimePoint now = clock_.Now();
  std::vector<CrlEntry> entries;
  // Serials with and without the top bit set, odd and even lengths, 1 to 20 octets; all reasons;
  // times in UTCTime and GeneralizedTime range.
  const std::vector<std::string> serials = {"1",
                                            "7f",
                                            "80",
                                            "ff",
                                            "100",
                                            "8000",
                                            "abcdef",
                                            "7fffffffffffffffffffffffffffffffffffffff",
                                            "ffffffffffffffffffffffffffffffffffffffff",
                                            "123456789abcdef0123456789abcdef0",
                                            "0"};
  const std::vector<int> reasons = {0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 1};
  for (size_t i = 0; i < serials.size(); ++i) {
    const TimePoint t = i == 3 ? FromUnix(2'600'000'000) : now - std::chrono::seconds(i);
    entries.push_back({serials[i], t, reasons[i]});
  }
  auto der = SignCrl(*ca_, entries, 123456789012LL, now, now + std::chrono::hours(1));
  ASSERT_TRUE(der) << der.error().ToString();
  auto parsed = ParseCrl(*der);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(X509_CRL_verify(parsed.get(), X509_get0_pubkey(ca_->intermediate())), 1);
  EXPECT_EQ(CrlNumberOf(parsed.get()), 123456789012LL);
  EXPECT_EQ(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(parsed.get())),
            static_cast<int>(entries.size()));
  for (size_t i = 0; i < serials.size(); ++i) {
    X509_REVOKED* rev = Find(parsed.get(), serials[i]);
    ASSERT_NE(rev, nullptr) << serials[i];
    EXPECT_EQ(ReasonOf(rev), reasons[i] == 0 ? -1 : reasons[i]) << serials[i];
    EXPECT_EQ(*crypto::Asn1TimeToTimePoint(X509_REVOKED_get0_revocationDate(rev)),
              entries[i].revoked_at);
  }
  // Our TBSCertList bytes, and OpenSSL's re-encoding of what it parsed.
  const unsigned char* p = der->data();
  crypto::X509CrlPtr again(d2i_X509_CRL(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_TRUE(again);
  unsigned char* reencoded = nullptr;
  const int len = i2d_re_X509_CRL_tbs(again.get(), &reencoded);
  crypto::OpenSslBufferPtr owned(reencoded);
  ASSERT_GT(len, 0);
  // The TBS is the first element of the outer SEQUENCE (4-byte header for this size).
  const size_t outer_header = (*der)[1] < 0x80 ? 2 : 2 + ((*der)[1] & 0x7f);
  ASSERT_LE(outer_header + static_cast<size_t>(len), der->size());
  EXPECT_EQ(Bytes(der->begin() + static_cast<ptrdiff_t>(outer_header),
                  der->begin() + static_cast<ptrdiff_t>(outer_header) + len),
            Bytes(reencoded, reencoded + len));

  // The openssl CLI agrees and verifies the signature.
  const std::string path = WritePem(*der, "canonical.pem");
  WriteText(tmp_ / "chain.pem", ca_->chain_pem());
  auto verify = RunCommand("openssl crl -in " + ShellQuote(path) + " -noout -text -CAfile " +
                           ShellQuote(tmp_ / "chain.pem"));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("verify OK"), std::string::npos) << verify.output;
  EXPECT_NE(verify.output.find("AA Compromise"), std::string::npos) << verify.output;
}

TEST_F(CrlTest, ManyEntriesArePagedThrough) {
  // More than one store page (1000 rows).
  auto st = store_->InTransaction([&](store::Transaction& tx) -> Status {
    store::User u;
    u.id = "bulk";
    u.first_seen = u.last_seen = clock_.Now();
    E2EID_CHECK_OK(tx.InsertUser(u));
    for (int i = 0; i < 2500; ++i) {
      store::Certificate c;
      c.serial = HexEncode(
          std::vector<uint8_t>{static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i & 0xff), 0x5a});
      c.serial.erase(0, c.serial.find_first_not_of('0'));
      c.issuer_id = issuer_id_;
      c.user_id = "bulk";
      c.spki_sha256 = std::string(64, 'b');
      c.not_before = clock_.Now();
      c.not_after = clock_.Now() + std::chrono::hours(24);
      c.issued_at = clock_.Now();
      c.der = {0x30, 0x00};
      E2EID_CHECK_OK(tx.ReserveSerial(c.serial, clock_.Now()));
      E2EID_CHECK_OK(tx.InsertCertificate(c));
    }
    return Ok();
  });
  ASSERT_TRUE(st) << st.error().ToString();
  RevocationService service(*store_, clock_);
  auto out = service.Revoke({RevocationScopeKind::kUser, "bulk", 1, "", "cli", "cli"});
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->affected, 2500);
  auto crl = Build();
  ASSERT_TRUE(crl) << crl.error().ToString();
  EXPECT_EQ(crl->entries, 2500u);
  auto parsed = ParseCrl(crl->der);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(parsed.get())), 2500);
  EXPECT_NE(Find(parsed.get(), "9c35a"), nullptr);  // i = 2499
}

TEST_F(CrlTest, Ed25519CaSignsCrls) {
  // A second CA with an Ed25519 key (SignatureDigest gives a null digest).
  e2eid::testing::TempDir dir;
  ca::InitOptions o;
  o.dir = dir / "ca";
  o.key_spec = crypto::KeySpec{crypto::KeyType::kEd25519, 0};
  auto init = ca::InitCa(o, clock_, random_);
  ASSERT_TRUE(init) << init.error().ToString();
  auto ca = ca::CertificateAuthority::Load(init->paths, std::nullopt);
  ASSERT_TRUE(ca) << ca.error().ToString();
  const TimePoint now = clock_.Now();
  auto der =
      SignCrl(*ca, std::vector<CrlEntry>{{"1234", now, 1}}, 1, now, now + std::chrono::hours(1));
  ASSERT_TRUE(der) << der.error().ToString();
  auto parsed = ParseCrl(*der);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(X509_CRL_verify(parsed.get(), X509_get0_pubkey(ca->intermediate())), 1);
}

// ---- CrlPublisher ---------------------------------------------------------------------------

class PublisherTest : public CrlTest {
 protected:
  void SetUp() override {
    CrlTest::SetUp();
    CrlOptions o;
    o.lifetime = std::chrono::hours(1);
    o.max_age = std::chrono::seconds(60);
    o.coalesce = std::chrono::milliseconds(10);
    publisher_ = std::make_unique<CrlPublisher>(*ca_, *store_, clock_, o);
    service_ = std::make_unique<RevocationService>(*store_, clock_);
    service_->AddListener(publisher_.get());
  }

  HttpRequest Get(std::string query = "") {
    HttpRequest r;
    r.method = "GET";
    r.path = "/crl";
    r.query = std::move(query);
    r.target = r.query.empty() ? r.path : r.path + "?" + r.query;
    return r;
  }

  std::unique_ptr<CrlPublisher> publisher_;
  std::unique_ptr<RevocationService> service_;
};

TEST_F(PublisherTest, ServesDerAndPemWithCacheHeaders) {
  auto before = publisher_->HandleCrl(Get());
  ASSERT_FALSE(before);
  EXPECT_EQ(before.error().code(), ErrorCode::kUnavailable);

  ASSERT_TRUE(publisher_->Start());
  auto current = publisher_->Current();
  ASSERT_TRUE(current);
  EXPECT_EQ(current->number, 1);
  EXPECT_EQ(current->pem, *CrlDerToPem(current->der));  // same armour as OpenSSL's

  auto der = publisher_->HandleCrl(Get());
  ASSERT_TRUE(der) << der.error().ToString();
  EXPECT_EQ(der->status, 200);
  EXPECT_EQ(der->Header("Content-Type"), "application/pkix-crl");
  EXPECT_EQ(der->Header("Cache-Control"), "public, max-age=60");
  EXPECT_EQ(der->Header("ETag"), "\"1-der\"");
  EXPECT_TRUE(der->Header("Last-Modified"));
  EXPECT_EQ(der->body, std::string(current->der.begin(), current->der.end()));

  auto pem = publisher_->HandleCrl(Get("format=pem"));
  ASSERT_TRUE(pem);
  EXPECT_EQ(pem->Header("Content-Type"), "application/x-pem-file");
  EXPECT_TRUE(pem->body.starts_with("-----BEGIN X509 CRL-----"));
  EXPECT_EQ(pem->Header("ETag"), "\"1-pem\"");

  HttpRequest accept = Get();
  accept.headers.emplace_back("Accept", "application/x-pem-file");
  auto pem2 = publisher_->HandleCrl(accept);
  ASSERT_TRUE(pem2);
  EXPECT_EQ(pem2->body, pem->body);

  HttpRequest head = Get();
  head.method = "HEAD";
  auto h = publisher_->HandleCrl(head);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);

  HttpRequest conditional = Get();
  conditional.headers.emplace_back("If-None-Match", "\"1-der\"");
  auto not_modified = publisher_->HandleCrl(conditional);
  ASSERT_TRUE(not_modified);
  EXPECT_EQ(not_modified->status, 304);
  EXPECT_TRUE(not_modified->body.empty());

  // max-age never goes beyond nextUpdate.
  clock_.Advance(std::chrono::seconds(3600 - 20));
  EXPECT_EQ(publisher_->HandleCrl(Get())->Header("Cache-Control"), "public, max-age=20");
  clock_.Advance(std::chrono::seconds(40));
  EXPECT_EQ(publisher_->HandleCrl(Get())->Header("Cache-Control"), "public, max-age=0");

  HttpRequest post = Get();
  post.method = "POST";
  auto refused = publisher_->HandleCrl(post);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 405);
  EXPECT_EQ(refused->Header("Allow"), "GET, HEAD");
  EXPECT_EQ(publisher_->HandleCrl(Get("format=xml")).error().code(), ErrorCode::kInvalidArgument);
  publisher_->Stop();
}

TEST_F(PublisherTest, RevocationPublishesANewCrl) {
  const auto leaf = IssueLeaf("alice", "dev-a");
  ASSERT_TRUE(publisher_->Start());
  const int64_t first = publisher_->Current()->number;

  auto out = service_->Revoke({RevocationScopeKind::kDevice, "dev-a", 1, "", "cli", "cli"});
  ASSERT_TRUE(out) << out.error().ToString();
  const int64_t next = publisher_->WaitForNumberAbove(first, kWait);
  ASSERT_GT(next, first);
  auto crl = publisher_->Current();
  auto parsed = ParseCrl(crl->der);
  ASSERT_TRUE(parsed);
  EXPECT_NE(Find(parsed.get(), leaf.record.serial), nullptr);
  const std::string path = tmp_ / "published.pem";
  WriteText(path, crl->pem);
  EXPECT_NE(Verify(leaf.path, path).exit_code, 0);

  // A revocation that changes nothing does not rebuild.
  auto again = service_->Revoke({RevocationScopeKind::kDevice, "dev-a", 1, "", "cli", "cli"});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->affected, 0);
  EXPECT_EQ(publisher_->WaitForNumberAbove(next, std::chrono::milliseconds(300)), next);
}

TEST_F(PublisherTest, RefreshesAtHalfTheLifetime) {
  ASSERT_TRUE(publisher_->Start());
  const int64_t first = publisher_->Current()->number;
  clock_.Advance(std::chrono::minutes(31));
  const int64_t next = publisher_->WaitForNumberAbove(first, kWait);
  EXPECT_GT(next, first);
  EXPECT_EQ(publisher_->Current()->this_update, clock_.Now());
}

TEST_F(PublisherTest, StartTwiceStopTwiceAndRebuild) {
  ASSERT_TRUE(publisher_->Start());
  EXPECT_EQ(publisher_->Start().error().code(), ErrorCode::kInternal);
  publisher_->Stop();
  publisher_->Stop();
  ASSERT_TRUE(publisher_->Rebuild());
  EXPECT_EQ(publisher_->Current()->number, 2);
  ASSERT_TRUE(publisher_->Start());  // restartable
  EXPECT_EQ(publisher_->Current()->number, 3);
}

TEST(CrlOptionsTest, Validate) {
  EXPECT_TRUE(CrlOptions{}.Validate());
  CrlOptions o;
  o.lifetime = std::chrono::seconds(30);
  EXPECT_EQ(o.Validate().error().code(), ErrorCode::kConfig);
  o = {};
  o.retry = std::chrono::seconds(0);
  EXPECT_FALSE(o.Validate());
  o = {};
  o.max_age = std::chrono::seconds(-1);
  EXPECT_FALSE(o.Validate());
}

}  // namespace
}  // namespace e2eid::revocation
