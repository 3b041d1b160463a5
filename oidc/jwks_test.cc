#include "oidc/jwks.h"

#include <gtest/gtest.h>

#include <string>

#include "oidc/test_keys.h"

namespace e2eid::oidc {
namespace {

using testing::JwkOf;
using testing::RawRsaJwk;
using testing::TestKeys;

std::string Set(const std::vector<Json>& keys) { return Json{{"keys", keys}}.dump(); }

TEST(JwksTest, ParsesEveryKeyTypeWithIdpMembers) {
  const TestKeys& k = TestKeys::Get();
  Json rsa = JwkOf(k.rsa, "rsa", "RS256");
  rsa["x5c"] = {"MIIBIjANBg=="};  // IdP extras are ignored
  rsa["x5t"] = "abc";
  rsa["x5t#S256"] = "def";
  auto jwks = ParseJwks(Set({rsa, JwkOf(k.p256, "p256", "ES256"), JwkOf(k.p384, "p384"),
                             JwkOf(k.p521, "p521"), JwkOf(k.ed25519, "ed", "EdDSA")}));
  ASSERT_TRUE(jwks) << jwks.error().ToString();
  EXPECT_EQ(jwks->keys().size(), 5u);
  EXPECT_TRUE(jwks->rejected().empty());
  const JwksKey* r = jwks->Find("rsa");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->alg, "RS256");
  EXPECT_EQ(r->key.type(), crypto::KeyType::kRsa);
  EXPECT_TRUE(r->pem.starts_with("-----BEGIN PUBLIC KEY-----"));
  ASSERT_NE(jwks->Find("p384"), nullptr);
  EXPECT_FALSE(jwks->Find("p384")->alg.has_value());
  EXPECT_EQ(jwks->Find("nope"), nullptr);
}

TEST(JwksTest, RejectsUnusableEntriesButKeepsTheRest) {
  const TestKeys& k = TestKeys::Get();
  Json enc = JwkOf(k.rsa2, "enc-key", "RSA-OAEP", "enc");
  Json small = RawRsaJwk(k.rsa1024.get(), "rsa1024");
  Json oct = {{"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0"}};
  Json priv = JwkOf(k.p256b, "with-d");
  priv["d"] = "AAAA";
  Json ops = JwkOf(k.ed25519b, "ops");
  ops["key_ops"] = {"encrypt"};
  Json bad_kid = JwkOf(k.p256b, "x");
  bad_kid["kid"] = 7;
  auto jwks = ParseJwks(Set({JwkOf(k.p256, "good"), enc, small, oct, priv, ops, bad_kid}));
  ASSERT_TRUE(jwks) << jwks.error().ToString();
  ASSERT_EQ(jwks->keys().size(), 1u);
  EXPECT_EQ(jwks->keys()[0].kid, "good");
  EXPECT_EQ(jwks->rejected().size(), 6u);
  const RejectedJwk* r = jwks->FindRejected("rsa1024");
  ASSERT_NE(r, nullptr);
  EXPECT_NE(r->reason.find("RSA"), std::string::npos) << r->reason;
  ASSERT_NE(jwks->FindRejected("enc-key"), nullptr);
  EXPECT_NE(jwks->FindRejected("enc-key")->reason.find("\"use\""), std::string::npos);
  ASSERT_NE(jwks->FindRejected("ops"), nullptr);
  EXPECT_NE(jwks->FindRejected("ops")->reason.find("key_ops"), std::string::npos);
  ASSERT_NE(jwks->FindRejected("with-d"), nullptr);
  ASSERT_NE(jwks->FindRejected("hmac"), nullptr);
}

TEST(JwksTest, DifferentKeysUnderOneKidAreAllRejected) {
  const TestKeys& k = TestKeys::Get();
  auto jwks = ParseJwks(Set({JwkOf(k.p256, "dup"), JwkOf(k.p256b, "dup"), JwkOf(k.p384, "ok")}));
  ASSERT_TRUE(jwks) << jwks.error().ToString();
  EXPECT_EQ(jwks->Find("dup"), nullptr);
  ASSERT_NE(jwks->FindRejected("dup"), nullptr);
  EXPECT_NE(jwks->Find("ok"), nullptr);
}

TEST(JwksTest, IdenticalRepeatsCollapse) {
  const TestKeys& k = TestKeys::Get();
  auto jwks = ParseJwks(Set({JwkOf(k.p256, "same"), JwkOf(k.p256, "same")}));
  ASSERT_TRUE(jwks) << jwks.error().ToString();
  EXPECT_EQ(jwks->keys().size(), 1u);
  EXPECT_TRUE(jwks->rejected().empty());
}

TEST(JwksTest, EntryWithoutKidIsUsable) {
  const TestKeys& k = TestKeys::Get();
  Json jwk = JwkOf(k.ed25519, "x");
  jwk.erase("kid");
  auto jwks = ParseJwks(Set({jwk}));
  ASSERT_TRUE(jwks) << jwks.error().ToString();
  ASSERT_EQ(jwks->keys().size(), 1u);
  EXPECT_EQ(jwks->keys()[0].kid, "");
}

TEST(JwksTest, MalformedDocumentsAreErrors) {
  for (const std::string body :
       {"", "[]", "{}", R"({"keys":{}})", R"({"keys":[1]})", R"({"keys":[],"keys":[]})", "{"}) {
    auto jwks = ParseJwks(body);
    ASSERT_FALSE(jwks) << body;
    EXPECT_EQ(jwks.error().code(), ErrorCode::kMalformed) << body;
  }
}

TEST(JwksTest, TooManyEntriesAreRefused) {
  std::vector<Json> keys(kMaxJwksEntries + 1, Json{{"kty", "oct"}});
  auto jwks = ParseJwks(Set(keys));
  ASSERT_FALSE(jwks);
  EXPECT_NE(jwks.error().detail().find("limit"), std::string::npos);
}

}  // namespace
}  // namespace e2eid::oidc
