#include "cli/dpop.h"

#include <gtest/gtest.h>

#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"

namespace e2eid::cli {
namespace {

const TimePoint kNow = FromUnix(1'700'000'000);

// Parses and verifies a proof with the key in its own header, checks that this key is `key`'s,
// and returns {header, claims}.
std::pair<Json, Json> VerifyProof(const std::string& proof, const crypto::PrivateKey& key) {
  auto jws = crypto::ParseCompactJws(proof);
  EXPECT_TRUE(jws) << (jws ? "" : jws.error().ToString());
  if (!jws) return {};
  auto header_key = crypto::PublicKeyFromJwk(jws->header["jwk"]);
  EXPECT_TRUE(header_key);
  if (!header_key) return {};
  auto pub = key.public_key();
  EXPECT_TRUE(pub);
  EXPECT_TRUE(header_key->Equals(*pub));
  auto verified = crypto::VerifyJws(*jws, *pub);
  EXPECT_TRUE(verified) << (verified ? "" : verified.error().ToString());
  auto claims = ParseJson(AsString(jws->payload));
  EXPECT_TRUE(claims);
  return {jws->header, claims ? *claims : Json()};
}

TEST(DpopTest, AccessTokenHashMatchesRfc9449Example) {
  // RFC 9449 §7.1: the "ath" of this access token.
  EXPECT_EQ(AccessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
}

TEST(DpopTest, HtuDropsQueryAndFragment) {
  EXPECT_EQ(DpopHtu("https://idp.example/token?x=1#f"), "https://idp.example/token");
  EXPECT_EQ(DpopHtu("https://idp.example/token#f"), "https://idp.example/token");
  EXPECT_EQ(DpopHtu("https://idp.example/token"), "https://idp.example/token");
}

class DpopKeyTest : public ::testing::TestWithParam<crypto::KeyType> {};

TEST_P(DpopKeyTest, IdpProofShape) {
  auto key = crypto::PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key);
  crypto::SecureRandom rng;
  DpopProofClaims c{.htm = "POST", .htu = "https://idp.example/realms/r/token?x=1"};
  auto plain = MakeDpopProof(*key, c, kNow, rng);
  ASSERT_TRUE(plain) << plain.error().ToString();
  auto [header, claims] = VerifyProof(*plain, *key);
  EXPECT_EQ(header["typ"], "dpop+jwt");
  EXPECT_EQ(header["alg"], crypto::JwsAlgName(crypto::DefaultJwsAlg(GetParam())));
  EXPECT_FALSE(header["jwk"].contains("d"));  // never the private key
  EXPECT_EQ(header.size(), 3u);
  EXPECT_EQ(claims["htm"], "POST");
  EXPECT_EQ(claims["htu"], "https://idp.example/realms/r/token");
  EXPECT_EQ(claims["iat"], ToUnix(kNow));
  ASSERT_TRUE(claims["jti"].is_string());
  EXPECT_GE(claims["jti"].get<std::string>().size(), 22u);
  EXPECT_FALSE(claims.contains("nonce"));
  EXPECT_FALSE(claims.contains("ath"));
  EXPECT_EQ(claims.size(), 4u);

  c.nonce = "server-nonce";
  c.access_token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
  auto bound = MakeDpopProof(*key, c, kNow, rng);
  ASSERT_TRUE(bound);
  auto [h2, c2] = VerifyProof(*bound, *key);
  EXPECT_EQ(c2["nonce"], "server-nonce");
  EXPECT_EQ(c2["ath"], "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
  EXPECT_NE(c2["jti"], claims["jti"]);
}

TEST_P(DpopKeyTest, WireDeviceProofCarriesEveryClaim) {
  auto key = crypto::PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key);
  crypto::SecureRandom rng;
  WireDeviceProofClaims c;
  c.client_id_uri = "wireapp://bxwt3FqLSiudng8eLTxLWg!abc123@example.com";
  c.challenge_url = "https://ca.example/acme/chall/dpop1";
  c.nonce = "authority-nonce";
  c.target = "https://ca.example/clients/abc123/access-token";
  c.challenge_token = "chal-token";
  c.handle_uri = "wireapp://%40alice@example.com";
  c.display_name = "Alice Smith";
  c.access_token = "idp-access-token";
  auto proof = MakeWireDeviceProof(*key, c, kNow, rng);
  ASSERT_TRUE(proof) << proof.error().ToString();
  auto [header, claims] = VerifyProof(*proof, *key);
  EXPECT_EQ(header["typ"], "dpop+jwt");
  EXPECT_TRUE(header.contains("jwk"));
  const Json expected = {
      {"iat", ToUnix(kNow)},
      {"nbf", ToUnix(kNow)},
      {"exp", ToUnix(kNow) + 300},
      {"sub", c.client_id_uri},
      {"aud", c.challenge_url},
      {"nonce", "authority-nonce"},
      {"htm", "POST"},
      {"htu", c.target},
      {"chal", "chal-token"},
      {"handle", c.handle_uri},
      {"team", "wire"},
      {"name", "Alice Smith"},
      {"ath", AccessTokenHash("idp-access-token")},
  };
  for (const auto& [name, value] : expected.items()) {
    EXPECT_EQ(claims[name], value) << name;
  }
  ASSERT_TRUE(claims["jti"].is_string());
  EXPECT_FALSE(claims["jti"].get<std::string>().empty());
  EXPECT_EQ(claims.size(), expected.size() + 1);  // + jti, nothing else
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, DpopKeyTest,
                         ::testing::Values(crypto::KeyType::kP256, crypto::KeyType::kP384,
                                           crypto::KeyType::kP521, crypto::KeyType::kEd25519),
                         [](const auto& info) {
                           return std::string(crypto::KeyTypeName(info.param));
                         });

}  // namespace
}  // namespace e2eid::cli
