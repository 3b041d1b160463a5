// Small, careful file helpers. All return kIo errors that name the path and the OS reason.
#ifndef E2EID_CORE_FILE_H_
#define E2EID_CORE_FILE_H_

#include <sys/types.h>
#include <string>
#include <string_view>

#include "core/error.h"

namespace e2eid {

// Reads a whole file. Errors: kNotFound when it does not exist, kIo otherwise.
Result<std::string> ReadFile(const std::string& path);

// Creates `path` with `mode` and writes `data`, refusing (kAlreadyExists) when anything exists at
// that path. O_EXCL|O_NOFOLLOW: never follows a symlink, never truncates. The data is fsync'd. On a
// failed write the partial file is removed.
Status WriteNewFile(const std::string& path, std::string_view data, mode_t mode);

// Replaces `path` atomically: writes a temporary file beside it with `mode`, fsyncs, renames over
// the target and fsyncs the directory. Readers see the old or the new content, never a mix.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode);

// Creates a directory (and parents) with `mode` when missing; an existing directory is fine.
Status MakeDirs(const std::string& path, mode_t mode);

// True when something (file, directory, link) exists at `path`.
bool PathExists(const std::string& path);

}  // namespace e2eid

#endif  // E2EID_CORE_FILE_H_
