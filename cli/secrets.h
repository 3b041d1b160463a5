// Reading secrets (passphrases) from files: the first line, without its line ending. Files that
// other users can read are accepted with a warning on stderr.
#ifndef E2EID_CLI_SECRETS_H_
#define E2EID_CLI_SECRETS_H_

#include <string>

#include "core/error.h"

namespace e2eid::cli {

// Errors: kNotFound / kIo for the file, kInvalidArgument when it is empty.
Result<std::string> ReadSecretFile(const std::string& path);

}  // namespace e2eid::cli

#endif  // E2EID_CLI_SECRETS_H_
