#include "core/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace e2eid {
namespace {

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/e2eid-file-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static mode_t Mode(const std::string& p) {
    struct stat st;
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  std::string dir_;
};

TEST_F(FileTest, WriteNewFileSetsModeAndRefusesOverwrite) {
  const std::string p = dir_ + "/key.pem";
  ASSERT_TRUE(WriteNewFile(p, "secret", 0600));
  EXPECT_EQ(Mode(p), 0600u);
  EXPECT_EQ(*ReadFile(p), "secret");
  auto again = WriteNewFile(p, "other", 0600);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(*ReadFile(p), "secret");
}

TEST_F(FileTest, WriteNewFileDoesNotFollowSymlinks) {
  const std::string target = dir_ + "/target";
  const std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_FALSE(WriteNewFile(link, "x", 0600));
  EXPECT_FALSE(PathExists(target));
}

TEST_F(FileTest, WriteFileAtomicReplaces) {
  const std::string p = dir_ + "/cert.pem";
  ASSERT_TRUE(WriteFileAtomic(p, "one", 0644));
  ASSERT_TRUE(WriteFileAtomic(p, "two", 0600));
  EXPECT_EQ(*ReadFile(p), "two");
  EXPECT_EQ(Mode(p), 0600u);
  // No temporary files are left behind.
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) (void)e, ++n;
  EXPECT_EQ(n, 1u);
}

TEST_F(FileTest, ReadMissingFileIsNotFound) {
  auto r = ReadFile(dir_ + "/absent");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST_F(FileTest, MakeDirsCreatesParents) {
  const std::string p = dir_ + "/a/b/c";
  ASSERT_TRUE(MakeDirs(p, 0700));
  EXPECT_TRUE(std::filesystem::is_directory(p));
  EXPECT_TRUE(MakeDirs(p, 0700));
}

}  // namespace
}  // namespace e2eid
