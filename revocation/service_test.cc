#include "revocation/service.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cctype>
#include <mutex>
#include <thread>
#include <vector>

#include "core/json.h"
#include "revocation/test_fixture.h"

namespace e2eid::revocation {
namespace {

using store::CertificateStatus;
using store::DeviceStatus;
using store::RevocationScopeKind;
using store::Table;
using store::UserStatus;

constexpr int kKeyCompromise = 1;
constexpr int kSuperseded = 4;

class RecordingListener final : public RevocationListener {
 public:
  void OnRevoked(const RevocationOutcome& outcome) override {
    std::lock_guard lock(mu_);
    calls_.push_back(outcome);
  }
  std::vector<RevocationOutcome> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::vector<RevocationOutcome> calls_;
};

class ServiceTest : public testing::RevocationFixture {
 protected:
  void SetUp() override {
    RevocationFixture::SetUp();
    service_ = std::make_unique<RevocationService>(*store_, clock_);
    service_->AddListener(&listener_);
  }

  RevocationRequest Request(RevocationScopeKind kind, std::string value, int reason = 0) {
    RevocationRequest r;
    r.kind = kind;
    r.value = std::move(value);
    r.reason = reason;
    r.comment = "incident 42";
    r.actor = "admin:alice";
    r.source = "192.0.2.1";
    return r;
  }

  store::Device GetDevice(const std::string& id) {
    store::Device out;
    auto st = store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(d, tx.GetDevice(id));
      out = std::move(d);
      return Ok();
    });
    EXPECT_TRUE(st) << st.error().ToString();
    return out;
  }

  store::User GetUser(const std::string& id) {
    store::User out;
    auto st = store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(u, tx.GetUser(id));
      out = std::move(u);
      return Ok();
    });
    EXPECT_TRUE(st) << st.error().ToString();
    return out;
  }

  // Runs SQL on the database file through a separate connection (to inject failures).
  void Sql(const std::string& sql) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open((tmp_ / "e2eid.db").c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    char* err = nullptr;
    const int rc = sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, &err);
    const std::string message = err != nullptr ? err : "";
    sqlite3_free(err);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  std::unique_ptr<RevocationService> service_;
  RecordingListener listener_;
};

TEST_F(ServiceTest, RevokesOneCertificate) {
  const auto a = IssueLeaf("alice", "dev-a");
  const auto b = IssueLeaf("alice", "dev-a");
  auto out =
      service_->Revoke(Request(RevocationScopeKind::kCertificate, a.record.serial, kKeyCompromise));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->affected, 1);
  EXPECT_GT(out->event_id, 0);

  const auto ca = GetCert(a.record.serial);
  EXPECT_EQ(ca.status, CertificateStatus::kRevoked);
  EXPECT_EQ(ca.revocation_reason, kKeyCompromise);
  EXPECT_EQ(ca.revocation_comment, "incident 42");
  EXPECT_EQ(ca.revoked_at, clock_.Now());
  EXPECT_EQ(GetCert(b.record.serial).status, CertificateStatus::kGood);
  // The device is not blocked by a certificate revocation.
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kActive);

  EXPECT_EQ(Count(Table::kRevocationEvents), 1);
  const auto audits = Audits();
  ASSERT_FALSE(audits.empty());
  const auto& last = audits.back();
  EXPECT_EQ(last.action, "certificate.revoke");
  EXPECT_EQ(last.target, a.record.serial);
  EXPECT_EQ(last.actor, "admin:alice");
  EXPECT_EQ(last.source, "192.0.2.1");
  EXPECT_EQ(last.outcome, "success");
  auto details = ParseJson(last.details);
  ASSERT_TRUE(details);
  EXPECT_EQ((*details)["affected"], 1);
  EXPECT_EQ((*details)["reason_name"], "keyCompromise");

  const auto calls = listener_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].affected, 1);
  EXPECT_EQ(calls[0].event_id, out->event_id);
}

TEST_F(ServiceTest, NormalisesSerials) {
  const auto a = IssueLeaf("alice", std::nullopt);
  std::string upper;
  for (const char c : a.record.serial) upper += static_cast<char>(std::toupper(c));
  std::string with_colons = "00";
  for (size_t i = 0; i < upper.size(); ++i) {
    if (i > 0 && i % 2 == 0) with_colons += ':';
    with_colons += upper[i];
  }
  auto out = service_->Revoke(Request(RevocationScopeKind::kCertificate, with_colons));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->affected, 1);
  EXPECT_EQ(GetCert(a.record.serial).status, CertificateStatus::kRevoked);
}

TEST_F(ServiceTest, RepeatingARevocationChangesNothingButIsAudited) {
  const auto a = IssueLeaf("alice", "dev-a");
  ASSERT_TRUE(service_->Revoke(
      Request(RevocationScopeKind::kCertificate, a.record.serial, kKeyCompromise)));
  const TimePoint first = clock_.Now();
  const auto audits_before = Audits().size();
  clock_.Advance(std::chrono::seconds(60));

  auto again =
      service_->Revoke(Request(RevocationScopeKind::kCertificate, a.record.serial, kSuperseded));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->affected, 0);
  const auto c = GetCert(a.record.serial);
  EXPECT_EQ(c.revoked_at, first);  // the first revocation stays
  EXPECT_EQ(c.revocation_reason, kKeyCompromise);
  const auto audits = Audits();
  ASSERT_EQ(audits.size(), audits_before + 1);
  EXPECT_EQ(audits.back().outcome, "success");
  EXPECT_EQ((*ParseJson(audits.back().details))["affected"], 0);

  // The device scope too: a second revocation of the device changes nothing.
  ASSERT_TRUE(service_->Revoke(Request(RevocationScopeKind::kDevice, "dev-a")));
  auto device_again = service_->Revoke(Request(RevocationScopeKind::kDevice, "dev-a"));
  ASSERT_TRUE(device_again);
  EXPECT_EQ(device_again->affected, 0);
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kBlocked);

  const auto calls = listener_.calls();
  ASSERT_EQ(calls.size(), 4u);  // once per Revoke, with the count
  EXPECT_EQ(calls[0].affected, 1);
  EXPECT_EQ(calls[1].affected, 0);
}

TEST_F(ServiceTest, DeviceScopeRevokesAndBlocksTheDevice) {
  const auto a1 = IssueLeaf("alice", "dev-a");
  const auto a2 = IssueLeaf("alice", "dev-a");
  const auto b1 = IssueLeaf("alice", "dev-b");
  auto out = service_->Revoke(Request(RevocationScopeKind::kDevice, "dev-a", kKeyCompromise));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->affected, 2);
  EXPECT_EQ(GetCert(a1.record.serial).status, CertificateStatus::kRevoked);
  EXPECT_EQ(GetCert(a2.record.serial).status, CertificateStatus::kRevoked);
  EXPECT_EQ(GetCert(b1.record.serial).status, CertificateStatus::kGood);
  const auto dev_a = GetDevice("dev-a");
  EXPECT_EQ(dev_a.status, DeviceStatus::kBlocked);
  EXPECT_EQ(dev_a.blocked_reason, "incident 42");
  EXPECT_EQ(GetDevice("dev-b").status, DeviceStatus::kActive);
  EXPECT_EQ(Audits().back().action, "device.revoke");
  EXPECT_EQ((*ParseJson(Audits().back().details))["devices_blocked"], 1);

  // Without a comment the reason name is the blocked reason.
  auto r = Request(RevocationScopeKind::kDevice, "dev-b", kSuperseded);
  r.comment.clear();
  ASSERT_TRUE(service_->Revoke(r));
  EXPECT_EQ(GetDevice("dev-b").blocked_reason, "superseded");

  // Unblocking lets it enrol again; the certificates stay revoked.
  ASSERT_TRUE(service_->UnblockDevice("dev-a", "admin:alice", "cli"));
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kActive);
  EXPECT_EQ(GetDevice("dev-a").blocked_reason, std::nullopt);
  EXPECT_EQ(GetCert(a1.record.serial).status, CertificateStatus::kRevoked);
}

TEST_F(ServiceTest, UserScopeRevokesEverythingAndBlocksAllDevices) {
  const auto a1 = IssueLeaf("alice", "dev-a");
  const auto a2 = IssueLeaf("alice", "dev-b");
  const auto a3 = IssueLeaf("alice", std::nullopt);
  const auto b1 = IssueLeaf("bob", "dev-c");
  auto out = service_->Revoke(Request(RevocationScopeKind::kUser, "alice", 3));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->affected, 3);
  for (const auto* l : {&a1, &a2, &a3}) {
    EXPECT_EQ(GetCert(l->record.serial).status, CertificateStatus::kRevoked);
  }
  EXPECT_EQ(GetCert(b1.record.serial).status, CertificateStatus::kGood);
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kBlocked);
  EXPECT_EQ(GetDevice("dev-b").status, DeviceStatus::kBlocked);
  EXPECT_EQ(GetDevice("dev-c").status, DeviceStatus::kActive);
  EXPECT_EQ(GetUser("alice").status, UserStatus::kActive);  // DisableUser does that
  EXPECT_EQ(Audits().back().action, "user.revoke");
  EXPECT_EQ((*ParseJson(Audits().back().details))["devices_blocked"], 2);
}

TEST_F(ServiceTest, KeyScopeRevokesEveryCertificateOfTheKey) {
  const auto a = IssueLeaf("alice", "dev-a", key_.get());
  const auto b = IssueLeaf("alice", "dev-b", key_.get());
  const auto other = IssueLeaf("alice", "dev-c");
  std::string upper = a.record.spki_sha256;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  auto out = service_->Revoke(Request(RevocationScopeKind::kKey, upper, kKeyCompromise));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->affected, 2);
  EXPECT_EQ(GetCert(a.record.serial).status, CertificateStatus::kRevoked);
  EXPECT_EQ(GetCert(b.record.serial).status, CertificateStatus::kRevoked);
  EXPECT_EQ(GetCert(other.record.serial).status, CertificateStatus::kGood);
  EXPECT_EQ(Audits().back().action, "key.revoke");
  EXPECT_EQ(Audits().back().target, a.record.spki_sha256);
}

TEST_F(ServiceTest, BeforeScopeRevokesOlderCertificates) {
  const auto old1 = IssueLeaf("alice", "dev-a");
  const auto old2 = IssueLeaf("bob", "dev-b");
  clock_.Advance(std::chrono::seconds(120));
  const TimePoint cut = clock_.Now();
  const auto young = IssueLeaf("alice", "dev-a");
  auto out = service_->Revoke(Request(RevocationScopeKind::kBefore, FormatRfc3339(cut), 2));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->affected, 2);
  EXPECT_EQ(GetCert(old1.record.serial).status, CertificateStatus::kRevoked);
  EXPECT_EQ(GetCert(old2.record.serial).status, CertificateStatus::kRevoked);
  EXPECT_EQ(GetCert(young.record.serial).status, CertificateStatus::kGood);
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kActive);  // no device is blocked
  EXPECT_EQ(Audits().back().action, "issued_before.revoke");
}

TEST_F(ServiceTest, UnknownTargetsAreNotFoundAndAuditedAsFailures) {
  IssueLeaf("alice", "dev-a");
  const auto events = Count(Table::kRevocationEvents);
  const auto audits = Audits().size();
  struct Case {
    RevocationScopeKind kind;
    std::string value;
  };
  for (const Case& c : {Case{RevocationScopeKind::kCertificate, "abcdef0123"},
                        Case{RevocationScopeKind::kDevice, "no-such-device"},
                        Case{RevocationScopeKind::kUser, "no-such-user"}}) {
    auto out = service_->Revoke(Request(c.kind, c.value));
    ASSERT_FALSE(out) << c.value;
    EXPECT_EQ(out.error().code(), ErrorCode::kNotFound) << out.error().ToString();
    const auto all = Audits();
    EXPECT_EQ(all.back().outcome, "failure");
    EXPECT_EQ(all.back().target, c.value);
  }
  EXPECT_EQ(Count(Table::kRevocationEvents), events);
  EXPECT_EQ(Audits().size(), audits + 3);
  EXPECT_TRUE(listener_.calls().empty());

  // A key or a time without certificates is not an error: nothing to revoke.
  auto key = service_->Revoke(Request(RevocationScopeKind::kKey, std::string(64, 'f')));
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(key->affected, 0);
}

TEST_F(ServiceTest, InvalidArgumentsChangeNothing) {
  const auto a = IssueLeaf("alice", "dev-a");
  const auto events = Count(Table::kRevocationEvents);
  const auto audits = Audits().size();
  struct Case {
    RevocationScopeKind kind;
    std::string value;
    int reason;
  };
  for (const Case& c : {
           Case{RevocationScopeKind::kCertificate, a.record.serial, 7},
           Case{RevocationScopeKind::kCertificate, a.record.serial, 11},
           Case{RevocationScopeKind::kCertificate, a.record.serial, -1},
           Case{RevocationScopeKind::kCertificate, a.record.serial, 6},
           Case{RevocationScopeKind::kCertificate, a.record.serial, 8},
           Case{RevocationScopeKind::kDevice, "dev-a", 7},
           Case{RevocationScopeKind::kCertificate, "not-hex", 0},
           Case{RevocationScopeKind::kCertificate, std::string(41, 'a'), 0},
           Case{RevocationScopeKind::kCertificate, "", 0},
           Case{RevocationScopeKind::kKey, "abcd", 0},
           Case{RevocationScopeKind::kKey, std::string(64, 'g'), 0},
           Case{RevocationScopeKind::kBefore, "yesterday", 0},
           Case{RevocationScopeKind::kDevice, "", 0},
           Case{RevocationScopeKind::kUser, "a\nb", 0},
       }) {
    auto out = service_->Revoke(Request(c.kind, c.value, c.reason));
    ASSERT_FALSE(out) << c.value << " " << c.reason;
    EXPECT_EQ(out.error().code(), ErrorCode::kInvalidArgument) << out.error().ToString();
  }
  EXPECT_EQ(GetCert(a.record.serial).status, CertificateStatus::kGood);
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kActive);
  EXPECT_EQ(Count(Table::kRevocationEvents), events);
  EXPECT_EQ(Audits().size(), audits);
  EXPECT_TRUE(listener_.calls().empty());
}

TEST_F(ServiceTest, AFailingAuditInsertRollsEverythingBack) {
  const auto a1 = IssueLeaf("alice", "dev-a");
  const auto a2 = IssueLeaf("alice", "dev-b");
  const auto events = Count(Table::kRevocationEvents);
  Sql("CREATE TRIGGER test_fail_audit BEFORE INSERT ON audit_events "
      "BEGIN SELECT RAISE(ABORT, 'audit refused by test'); END;");
  auto out = service_->Revoke(Request(RevocationScopeKind::kUser, "alice", kKeyCompromise));
  ASSERT_FALSE(out);
  // The store reports a refusing trigger as kForbidden; any error must roll everything back.
  EXPECT_NE(out.error().detail().find("audit refused by test"), std::string::npos)
      << out.error().ToString();
  EXPECT_EQ(GetCert(a1.record.serial).status, CertificateStatus::kGood);
  EXPECT_EQ(GetCert(a2.record.serial).status, CertificateStatus::kGood);
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kActive);
  EXPECT_EQ(GetDevice("dev-b").status, DeviceStatus::kActive);
  EXPECT_EQ(Count(Table::kRevocationEvents), events);
  EXPECT_TRUE(listener_.calls().empty());

  Sql("DROP TRIGGER test_fail_audit;");
  auto retry = service_->Revoke(Request(RevocationScopeKind::kUser, "alice", kKeyCompromise));
  ASSERT_TRUE(retry) << retry.error().ToString();
  EXPECT_EQ(retry->affected, 2);
}

TEST_F(ServiceTest, BlockAndUnblockDevice) {
  const auto a = IssueLeaf("alice", "dev-a");
  const auto audits = Audits().size();
  ASSERT_TRUE(service_->BlockDevice("dev-a", "lost phone", "admin:alice", "cli"));
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kBlocked);
  EXPECT_EQ(GetDevice("dev-a").blocked_reason, "lost phone");
  EXPECT_EQ(GetCert(a.record.serial).status, CertificateStatus::kGood);        // block != revoke
  ASSERT_TRUE(service_->BlockDevice("dev-a", "again", "admin:alice", "cli"));  // idempotent
  EXPECT_EQ(GetDevice("dev-a").blocked_reason, "lost phone");
  ASSERT_TRUE(service_->UnblockDevice("dev-a", "admin:alice", "cli"));
  ASSERT_TRUE(service_->UnblockDevice("dev-a", "admin:alice", "cli"));
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kActive);
  const auto all = Audits();
  ASSERT_EQ(all.size(), audits + 4);
  EXPECT_EQ(all[audits].action, "device.block");
  EXPECT_EQ((*ParseJson(all[audits].details))["changed"], true);
  EXPECT_EQ((*ParseJson(all[audits + 1].details))["changed"], false);
  EXPECT_EQ(all[audits + 2].action, "device.unblock");

  auto missing = service_->BlockDevice("nope", "x", "admin:alice", "cli");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Audits().back().outcome, "failure");
  EXPECT_EQ(service_->UnblockDevice("nope", "admin:alice", "cli").error().code(),
            ErrorCode::kNotFound);
  EXPECT_TRUE(listener_.calls().empty());
}

TEST_F(ServiceTest, RemoveDeviceRevokesAndIsFinal) {
  const auto a1 = IssueLeaf("alice", "dev-a");
  const auto a2 = IssueLeaf("alice", "dev-a");
  auto out = service_->RemoveDevice("dev-a", "user:alice", "198.51.100.7");
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->affected, 2);
  const auto c = GetCert(a1.record.serial);
  EXPECT_EQ(c.status, CertificateStatus::kRevoked);
  EXPECT_EQ(c.revocation_reason, 5);  // cessationOfOperation
  EXPECT_EQ(GetCert(a2.record.serial).status, CertificateStatus::kRevoked);
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kRemoved);
  EXPECT_EQ(Audits().back().action, "device.remove");
  ASSERT_EQ(listener_.calls().size(), 1u);
  EXPECT_EQ(listener_.calls()[0].affected, 2);

  auto again = service_->RemoveDevice("dev-a", "user:alice", "198.51.100.7");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->affected, 0);

  // Removed is final: not unblocked, not turned back into "blocked".
  auto unblock = service_->UnblockDevice("dev-a", "admin:alice", "cli");
  ASSERT_FALSE(unblock);
  EXPECT_EQ(unblock.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(Audits().back().outcome, "failure");
  ASSERT_TRUE(service_->BlockDevice("dev-a", "x", "admin:alice", "cli"));
  ASSERT_TRUE(service_->Revoke(Request(RevocationScopeKind::kDevice, "dev-a")));
  EXPECT_EQ(GetDevice("dev-a").status, DeviceStatus::kRemoved);
  EXPECT_EQ(service_->RemoveDevice("nope", "user:alice", "x").error().code(), ErrorCode::kNotFound);
}

TEST_F(ServiceTest, DisableAndEnableUser) {
  const auto a = IssueLeaf("alice", "dev-a");
  ASSERT_TRUE(service_->DisableUser("alice", "left the company", "admin:root", "cli"));
  EXPECT_EQ(GetUser("alice").status, UserStatus::kDisabled);
  EXPECT_EQ(GetCert(a.record.serial).status, CertificateStatus::kGood);
  EXPECT_EQ(Audits().back().action, "user.disable");
  ASSERT_TRUE(service_->DisableUser("alice", "", "admin:root", "cli"));
  ASSERT_TRUE(service_->EnableUser("alice", "admin:root", "cli"));
  EXPECT_EQ(GetUser("alice").status, UserStatus::kActive);
  EXPECT_EQ(Audits().back().action, "user.enable");
  EXPECT_EQ(service_->DisableUser("nobody", "", "admin:root", "cli").error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(service_->EnableUser("", "admin:root", "cli").error().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(ServiceTest, ConcurrentRevocationsAreEachCountedOnce) {
  std::vector<testing::Leaf> leaves;
  for (int i = 0; i < 8; ++i) leaves.push_back(IssueLeaf("alice", "dev-" + std::to_string(i)));
  std::vector<std::thread> threads;
  std::atomic<int64_t> total{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (const auto& l : leaves) {
        auto out = service_->Revoke(Request(RevocationScopeKind::kCertificate, l.record.serial));
        if (out) total += out->affected;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total.load(), 8);
  EXPECT_EQ(listener_.calls().size(), 32u);
}

TEST(ReasonTest, NamesAndParsing) {
  EXPECT_EQ(RevocationReasonName(0), "unspecified");
  EXPECT_EQ(RevocationReasonName(1), "keyCompromise");
  EXPECT_EQ(RevocationReasonName(5), "cessationOfOperation");
  EXPECT_EQ(RevocationReasonName(10), "aACompromise");
  EXPECT_EQ(RevocationReasonName(7), "unknown");
  EXPECT_EQ(RevocationReasonName(11), "unknown");
  EXPECT_EQ(ParseRevocationReason("1"), 1);
  EXPECT_EQ(ParseRevocationReason("keycompromise"), 1);
  EXPECT_EQ(ParseRevocationReason("superseded"), 4);
  EXPECT_EQ(ParseRevocationReason("10"), 10);
  EXPECT_FALSE(ParseRevocationReason("7"));
  EXPECT_FALSE(ParseRevocationReason("unused"));
  EXPECT_FALSE(ParseRevocationReason(""));
  EXPECT_FALSE(ParseRevocationReason("-1"));
  EXPECT_FALSE(ParseRevocationReason("100"));
  EXPECT_TRUE(IsAcceptedRevocationReason(0));
  EXPECT_TRUE(IsAcceptedRevocationReason(9));
  EXPECT_FALSE(IsAcceptedRevocationReason(6));
  EXPECT_FALSE(IsAcceptedRevocationReason(8));
}

}  // namespace
}  // namespace e2eid::revocation
