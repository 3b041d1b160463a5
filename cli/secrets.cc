#include "cli/secrets.h"

#include <sys/stat.h>

#include <cstdio>

#include "core/file.h"

namespace e2eid::cli {

Result<std::string> ReadSecretFile(const std::string& path) {
  E2EID_TRY(content, ReadFile(path));
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    std::fprintf(stderr, "e2eid: warning: %s is readable by other users (mode %03o); use 0600\n",
                 path.c_str(), static_cast<unsigned>(st.st_mode & 0777));
  }
  if (auto nl = content.find('\n'); nl != std::string::npos) content.resize(nl);
  if (!content.empty() && content.back() == '\r') content.pop_back();
  if (content.empty()) return Fail(Error::InvalidArgument(path + " is empty"));
  return content;
}

}  // namespace e2eid::cli
