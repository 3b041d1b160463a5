// Helpers shared by the crypto tests only (not part of the library): a self-cleaning temporary
// directory and a way to run the `openssl` command-line tool.
#ifndef E2EID_CRYPTO_TEST_UTIL_H_
#define E2EID_CRYPTO_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/file.h"

namespace e2eid::crypto::testing {

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "e2eid-crypto-XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  std::string Path(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Runs `openssl <args>` with output discarded; returns the exit status (0 on success).
inline int RunOpenssl(const std::string& args) {
  const std::string cmd = "openssl " + args + " >/dev/null 2>&1 </dev/null";
  return std::system(cmd.c_str());
}

inline std::string ReadOrEmpty(const std::string& path) {
  auto r = ReadFile(path);
  return r ? *r : std::string();
}

inline void WriteOrFail(const std::string& path, std::string_view data) {
  auto s = WriteNewFile(path, data, 0600);
  ASSERT_TRUE(s) << s.error().ToString();
}

}  // namespace e2eid::crypto::testing

#endif  // E2EID_CRYPTO_TEST_UTIL_H_
