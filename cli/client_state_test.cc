#include "cli/client_state.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid::cli {
namespace {

using e2eid::testing::TempDir;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

ClientState Sample() {
  ClientState s;
  s.directory_url = "https://localhost:8443/acme/directory";
  s.issuer = "http://127.0.0.1:9000/realms/wire";
  s.client_id = "wireapp";
  s.domain = "example.com";
  s.device_id = "abc123";
  s.user_id = "bxwt3FqLSiudng8eLTxLWg";
  s.handle = "alice";
  s.display_name = "Alice Smith";
  s.account_url = "https://localhost:8443/acme/acct/1";
  s.cert_serial = "8f0102";
  s.not_before = FromUnix(1'700'000'000);
  s.not_after = FromUnix(1'700'086'400);
  s.ari_cert_id = "aki.serial";
  s.ca_file = "/etc/e2eid/root.pem";
  s.device_authority = "https://localhost:8443";
  s.validity_seconds = 86400;
  return s;
}

TEST(ClientStateTest, JsonRoundTrip) {
  const ClientState s = Sample();
  const Json j = StateToJson(s);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["not_before"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(j["name"], "Alice Smith");
  auto back = StateFromJson(j);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, s);

  ClientState empty;
  auto empty_back = StateFromJson(StateToJson(empty));
  ASSERT_TRUE(empty_back);
  EXPECT_EQ(*empty_back, empty);
}

TEST(ClientStateTest, JsonErrors) {
  Json j = StateToJson(Sample());
  j["version"] = 2;
  EXPECT_FALSE(StateFromJson(j));
  j = StateToJson(Sample());
  j["domain"] = 5;
  EXPECT_FALSE(StateFromJson(j));
  j = StateToJson(Sample());
  j["not_after"] = "yesterday";
  EXPECT_FALSE(StateFromJson(j));
  j = StateToJson(Sample());
  j["future_member"] = "ignored";
  EXPECT_TRUE(StateFromJson(j));
  EXPECT_FALSE(StateFromJson(Json::array()));
}

TEST(ClientStateTest, FilesRoundTripWithModes) {
  TempDir tmp;
  const std::string dir_path = tmp / "state";
  ASSERT_TRUE(MakeDirs(dir_path, 0755));
  ASSERT_EQ(ModeOf(dir_path), 0755u);
  StateDir dir(dir_path);
  ASSERT_TRUE(dir.Prepare());
  EXPECT_EQ(ModeOf(dir_path), 0700u);

  auto none = dir.LoadState();
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(dir.SaveState(Sample()));
  EXPECT_EQ(ModeOf(dir.state_path()), 0600u);
  auto loaded = dir.LoadState();
  ASSERT_TRUE(loaded && loaded->has_value());
  EXPECT_EQ(**loaded, Sample());

  auto no_key = dir.LoadKey(dir.device_key_path());
  ASSERT_TRUE(no_key);
  EXPECT_FALSE(no_key->has_value());
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(key);
  ASSERT_TRUE(dir.SaveKey(dir.device_key_path(), *key));
  EXPECT_EQ(ModeOf(dir.device_key_path()), 0600u);
  auto key_back = dir.LoadKey(dir.device_key_path());
  ASSERT_TRUE(key_back && key_back->has_value());
  EXPECT_EQ((*key_back)->type(), crypto::KeyType::kEd25519);
  EXPECT_TRUE((*key_back)->public_key()->Equals(*key->public_key()));
  auto pem = ReadFile(dir.device_key_path());
  ASSERT_TRUE(pem);
  EXPECT_EQ(pem->rfind("-----BEGIN PRIVATE"
                       " KEY-----",
                       0),
            0u);  // PKCS#8

  auto no_token = dir.LoadRefreshToken();
  ASSERT_TRUE(no_token);
  EXPECT_FALSE(no_token->has_value());
  ASSERT_TRUE(dir.SaveRefreshToken("refresh-1"));
  EXPECT_EQ(ModeOf(dir.refresh_token_path()), 0600u);
  ASSERT_TRUE(dir.SaveRefreshToken("refresh-2"));  // rotation replaces atomically
  auto token = dir.LoadRefreshToken();
  ASSERT_TRUE(token && token->has_value());
  EXPECT_EQ(**token, "refresh-2");

  ASSERT_TRUE(dir.SaveCertificate("LEAF", "LEAF+CHAIN"));
  EXPECT_EQ(ModeOf(dir.cert_path()), 0644u);
  EXPECT_EQ(ModeOf(dir.chain_path()), 0644u);
  EXPECT_EQ(*ReadFile(dir.cert_path()), "LEAF");
  EXPECT_EQ(*ReadFile(dir.chain_path()), "LEAF+CHAIN");
}

TEST(ClientStateTest, BrokenFilesAreErrors) {
  TempDir tmp;
  StateDir dir(tmp.path());
  ASSERT_TRUE(WriteNewFile(dir.state_path(), "{not json", 0600));
  EXPECT_FALSE(dir.LoadState());
  ASSERT_TRUE(WriteNewFile(dir.client_key_path(), "garbage", 0600));
  auto key = dir.LoadKey(dir.client_key_path());
  ASSERT_FALSE(key);
  EXPECT_NE(key.error().detail().find("client.key"), std::string::npos);
}

}  // namespace
}  // namespace e2eid::cli
