// `e2eid check-config FILE`: validates a configuration exactly as `serve` loads it (LoadConfig with
// the environment overrides, then CheckConfigFiles: everything but the network) and prints the
// effective configuration, every key with defaults included and secrets masked.
//
// Exit codes: 0 valid (the effective configuration on stdout), 1 invalid ("FILE: KEY: problem" on
// stderr), 2 usage error.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"

namespace e2eid::cli {
namespace {

const std::vector<OptionSpec> kCheckConfigOptions = {
    {"config", true, false, "the TOML configuration file (or give it as the argument)", "FILE"},
    {"quiet", false, false, "print nothing when the configuration is valid"},
    {"help", false, false, "show this help"},
};

}  // namespace

int RunCheckConfig(const std::vector<std::string>& argv) {
  auto args = Args::Parse("check-config", kCheckConfigOptions, argv);
  if (!args) {
    std::fprintf(stderr, "%s\n", args.error().detail().c_str());
    return 2;
  }
  if (args->Has("help")) {
    std::printf(
        "Usage: e2eid check-config FILE\n\nValidates the configuration as `e2eid serve` would "
        "(without contacting the network) and prints the effective configuration with secrets "
        "masked. Exit status 0: valid; 1: invalid.\n\n%s",
        FormatOptions(kCheckConfigOptions).c_str());
    return 0;
  }
  std::vector<std::string> files = args->positional();
  if (auto c = args->Get("config")) files.push_back(*c);
  if (files.size() != 1) {
    std::fprintf(stderr, "e2eid check-config: expected exactly one configuration FILE\n");
    return 2;
  }
  const std::string& file = files.front();
  auto config = LoadConfig(file, ProcessEnvironment());
  if (!config) {
    if (config.error().code() == ErrorCode::kNotFound) {
      std::fprintf(stderr, "%s: %s\n", file.c_str(), config.error().detail().c_str());
    } else {
      std::fprintf(stderr, "%s\n", config.error().detail().c_str());
    }
    return 1;
  }
  if (auto st = CheckConfigFiles(*config); !st) {
    std::fprintf(stderr, "%s\n", st.error().detail().c_str());
    return 1;
  }
  if (!args->Has("quiet")) std::fputs(FormatEffectiveConfig(*config).c_str(), stdout);
  std::fprintf(stderr, "%s: configuration is valid\n", file.c_str());
  return 0;
}

}  // namespace e2eid::cli
