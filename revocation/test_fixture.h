// Shared fixture of the revocation tests: a CA made with ca::InitCa, a SQLite store in a temporary
// directory, an Issuer whose serials are reserved in the store, and helpers that issue leaves and
// record them (with their user and device) the way the ACME engine does. Test code only.
#ifndef E2EID_REVOCATION_TEST_FIXTURE_H_
#define E2EID_REVOCATION_TEST_FIXTURE_H_

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ca/authority.h"
#include "ca/issuer.h"
#include "ca/x509.h"
#include "core/clock.h"
#include "crypto/key.h"
#include "crypto/random.h"
#include "revocation/crl.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace e2eid::revocation::testing {

using e2eid::testing::RunCommand;
using e2eid::testing::ShellQuote;
using e2eid::testing::TempDir;

// Reserves serials in the store, like acme::StoreSerialRegistry (revocation may not depend on
// acme).
class StoreSerials final : public ca::SerialRegistry {
 public:
  StoreSerials(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}
  Status Reserve(const std::string& serial_hex) override {
    const TimePoint now = clock_.Now();
    return store_.InTransaction(
        [&](store::Transaction& tx) { return tx.ReserveSerial(serial_hex, now); });
  }

 private:
  store::Store& store_;
  const Clock& clock_;
};

// A leaf as issued and recorded.
struct Leaf {
  store::Certificate record;
  std::string pem;
  std::string path;  // the PEM written to the temp dir
};

inline void WriteText(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class RevocationFixture : public ::testing::Test {
 protected:
  // The fake clock starts at the real time, so that the openssl CLI accepts what we sign.
  RevocationFixture() : clock_(SystemClock().Now()) {}

  void SetUp() override { SetUpCa(crypto::KeySpec{}); }

  void SetUpCa(const crypto::KeySpec& spec) {
    ca::InitOptions o;
    o.dir = tmp_ / "ca";
    o.domain = "example.com";
    o.key_spec = spec;
    auto init = ca::InitCa(o, clock_, random_);
    ASSERT_TRUE(init) << init.error().ToString();
    paths_ = init->paths;
    auto ca = ca::CertificateAuthority::Load(paths_, std::nullopt);
    ASSERT_TRUE(ca) << ca.error().ToString();
    ca_ = std::make_unique<ca::CertificateAuthority>(std::move(*ca));
    auto opened = store::OpenSqliteStore({.path = tmp_ / "e2eid.db", .synchronous_full = false});
    ASSERT_TRUE(opened) << opened.error().ToString();
    store_ = std::move(*opened);
    serials_ = std::make_unique<StoreSerials>(*store_, clock_);
    issuer_ = std::make_unique<ca::Issuer>(
        *ca_, ca::ValidityPolicy{},
        ca::IssuerUrls{"http://ca.example.com/crl", "http://ca.example.com/ocsp", ""}, *serials_,
        clock_, random_);
    auto id = IssuerIdOf(*ca_);
    ASSERT_TRUE(id) << id.error().ToString();
    issuer_id_ = *id;
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
    ASSERT_TRUE(key);
    key_ = std::make_unique<crypto::PrivateKey>(std::move(*key));
  }

  void EnsureUserAndDevice(const std::string& user_id, const std::optional<std::string>& device) {
    auto st = store_->InTransaction([&](store::Transaction& tx) -> Status {
      if (!tx.GetUser(user_id)) {
        store::User u;
        u.id = user_id;
        u.handle = user_id;
        u.display_name = "User " + user_id;
        u.first_seen = u.last_seen = clock_.Now();
        E2EID_CHECK_OK(tx.InsertUser(u));
      }
      if (device && !tx.GetDevice(*device)) {
        store::Device d;
        d.id = *device;
        d.user_id = user_id;
        d.display_name = "Device";
        d.handle = user_id;
        d.key_thumbprint = "thumb-" + *device;
        d.first_seen = d.last_seen = clock_.Now();
        E2EID_CHECK_OK(tx.InsertDevice(d));
      }
      return Ok();
    });
    ASSERT_TRUE(st) << st.error().ToString();
  }

  // Issues a device certificate for `user_id` / `device` and records it. `key` defaults to a fresh
  // P-256 key.
  Leaf IssueLeaf(const std::string& user_id, const std::optional<std::string>& device,
                 const crypto::PrivateKey* key = nullptr) {
    EnsureUserAndDevice(user_id, device);
    std::optional<crypto::PrivateKey> fresh;
    if (key == nullptr) {
      auto k = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
      EXPECT_TRUE(k);
      fresh.emplace(std::move(*k));
      key = &*fresh;
    }
    auto pub = key->public_key();
    EXPECT_TRUE(pub);
    ca::LeafRequest r;
    r.public_key = &*pub;
    r.subject = {{"O", "example.com"}, {"CN", "User " + user_id}};
    r.uris = {"https://example.com/users/" + user_id};
    auto issued = issuer_->Issue(r);
    EXPECT_TRUE(issued) << issued.error().ToString();
    Leaf leaf;
    leaf.pem = issued->pem;
    store::Certificate& c = leaf.record;
    c.serial = issued->serial_hex;
    c.issuer_id = issuer_id_;
    c.user_id = user_id;
    c.device_id = device;
    c.spki_sha256 = issued->spki_sha256_hex;
    c.not_before = issued->not_before;
    c.not_after = issued->not_after;
    c.issued_at = clock_.Now();
    c.der = issued->der;
    c.chain_pem = issued->chain_pem;
    auto st =
        store_->InTransaction([&](store::Transaction& tx) { return tx.InsertCertificate(c); });
    EXPECT_TRUE(st) << st.error().ToString();
    leaf.path = tmp_ / ("leaf-" + c.serial + ".pem");
    WriteText(leaf.path, leaf.pem);
    return leaf;
  }

  // A certificate row with a fake DER (for cases the CA cannot produce, e.g. already expired).
  store::Certificate InsertFakeCertificate(const std::string& serial, const std::string& user_id,
                                           TimePoint not_after, std::string issuer_id) {
    EnsureUserAndDevice(user_id, std::nullopt);
    store::Certificate c;
    c.serial = serial;
    c.issuer_id = std::move(issuer_id);
    c.user_id = user_id;
    c.spki_sha256 = std::string(64, 'a');
    c.not_before = not_after - std::chrono::hours(24);
    c.not_after = not_after;
    c.issued_at = c.not_before;
    c.der = {0x30, 0x00};
    auto st = store_->InTransaction([&](store::Transaction& tx) -> Status {
      E2EID_CHECK_OK(tx.ReserveSerial(serial, clock_.Now()));
      return tx.InsertCertificate(c);
    });
    EXPECT_TRUE(st) << st.error().ToString();
    return c;
  }

  store::Certificate GetCert(const std::string& serial) {
    store::Certificate out;
    auto st = store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(c, tx.GetCertificate(serial));
      out = std::move(c);
      return Ok();
    });
    EXPECT_TRUE(st) << st.error().ToString();
    return out;
  }

  int64_t Count(store::Table table) {
    int64_t n = -1;
    auto st = store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(c, tx.CountRows(table));
      n = c;
      return Ok();
    });
    EXPECT_TRUE(st) << st.error().ToString();
    return n;
  }

  std::vector<store::AuditEvent> Audits() {
    std::vector<store::AuditEvent> out;
    auto st = store_->ReadOnly([&](store::Transaction& tx) -> Status {
      store::PageRequest page;
      page.limit = store::kMaxPageLimit;
      for (;;) {
        E2EID_TRY(p, tx.ListAuditEvents(page));
        for (auto& e : p.items) out.push_back(std::move(e));
        if (p.next.empty()) return Ok();
        page.after = p.next;
      }
    });
    EXPECT_TRUE(st) << st.error().ToString();
    return out;
  }

  TempDir tmp_;
  FakeClock clock_;
  crypto::SecureRandom random_;
  ca::CaPaths paths_;
  std::unique_ptr<ca::CertificateAuthority> ca_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<StoreSerials> serials_;
  std::unique_ptr<ca::Issuer> issuer_;
  std::unique_ptr<crypto::PrivateKey> key_;
  std::string issuer_id_;
};

}  // namespace e2eid::revocation::testing

#endif  // E2EID_REVOCATION_TEST_FIXTURE_H_
