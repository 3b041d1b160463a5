// The `e2eid` binary: dispatches to the subcommands in cli/commands.h.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

constexpr char kUsage[] =
    "Usage: e2eid COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  init      create the root and intermediate CA\n"
    "  serve     run the CA service\n"
    "  check-config  validate a configuration and print the effective one\n"
    "  enrol     obtain an end-to-end identity certificate for this device\n"
    "  renew     renew the device certificate (once, or as a daemon)\n"
    "  admin     administer devices, certificates and revocations (admin API client)\n"
    "  version   print the version\n"
    "\n"
    "Run 'e2eid COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "init") return e2eid::cli::RunInit(args);
  if (command == "serve") return e2eid::cli::RunServe(args);
  if (command == "check-config") return e2eid::cli::RunCheckConfig(args);
  if (command == "enrol") return e2eid::cli::RunEnrol(args);
  if (command == "renew") return e2eid::cli::RunRenew(args);
  if (command == "admin") return e2eid::cli::RunAdmin(args);
  if (command == "version" || command == "--version") {
    std::printf("e2eid %s\n", E2EID_VERSION);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "e2eid: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return 2;
}
