#include "core/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <filesystem>

namespace e2eid {
namespace {

Error IoError(std::string_view what, const std::string& path, int err) {
  return Error::Io(std::string(what) + " " + path + ": " + std::strerror(err));
}

// Writes all of `data` to fd and fsyncs it.
Status WriteAll(int fd, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(IoError("writing", path, errno));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return Fail(IoError("syncing", path, errno));
  return Ok();
}

void SyncDirectoryOf(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Fail(Error::NotFound("no such file: " + path));
    return Fail(IoError("opening", path, errno));
  }
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Fail(IoError("reading", path, err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status WriteNewFile(const std::string& path, std::string_view data, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Fail(Error::AlreadyExists(path + " already exists; refusing to overwrite it"));
    }
    return Fail(IoError("creating", path, errno));
  }
  // The umask may have removed bits; set exactly the requested mode.
  if (::fchmod(fd, mode) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return Fail(IoError("setting mode of", path, err));
  }
  auto st = WriteAll(fd, data, path);
  ::close(fd);
  if (!st) {
    ::unlink(path.c_str());
    return st;
  }
  SyncDirectoryOf(path);
  return Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Fail(IoError("creating temporary file for", path, errno));
  if (::fchmod(fd, mode) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Fail(IoError("setting mode of", tmp, err));
  }
  auto st = WriteAll(fd, data, tmp);
  ::close(fd);
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Fail(IoError("renaming over", path, err));
  }
  SyncDirectoryOf(path);
  return Ok();
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Ok();
  std::filesystem::path p(path);
  std::filesystem::path acc;
  for (const auto& part : p) {
    acc /= part;
    if (std::filesystem::is_directory(acc, ec)) continue;
    if (::mkdir(acc.c_str(), mode) != 0 && errno != EEXIST) {
      return Fail(IoError("creating directory", acc.string(), errno));
    }
  }
  return Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace e2eid
