// The subcommands of the `e2eid` binary. Each takes its arguments (after the command name) and
// returns the process exit code; errors are printed to stderr as "e2eid <command>: <detail>".
#ifndef E2EID_CLI_COMMANDS_H_
#define E2EID_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace e2eid::cli {

// Exit codes: 0 success, 1 the command failed, 2 usage error.
int RunInit(const std::vector<std::string>& args);
int RunServe(const std::vector<std::string>& args);
// Validates a configuration offline and prints the effective one (cli/check_config_command.cc);
// exit code 1 when it is invalid.
int RunCheckConfig(const std::vector<std::string>& args);
// The device enrolment client (cli/enrol_command.cc). `renew` adds exit code 3: the identity
// provider refused the refresh token, so the user must run `e2eid enrol` again.
int RunEnrol(const std::vector<std::string>& args);
int RunRenew(const std::vector<std::string>& args);
// The admin API client (cli/admin_command.cc): `e2eid admin SUBCOMMAND ...`; `--help` lists the
// subcommands.
int RunAdmin(const std::vector<std::string>& args);

}  // namespace e2eid::cli

#endif  // E2EID_CLI_COMMANDS_H_
