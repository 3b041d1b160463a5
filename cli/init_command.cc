// `e2eid init`: creates the root and intermediate CA in a directory.
#include <cstdio>

#include "ca/authority.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/secrets.h"
#include "crypto/random.h"

namespace e2eid::cli {
namespace {

const std::vector<OptionSpec> kInitOptions = {
    {"dir", true, true, "directory for the CA's keys and certificates", "DIR"},
    {"domain", true, false,
     "the organisation's domain: O= of the CA and the intermediate's URI name constraint",
     "DOMAIN"},
    {"no-name-constraints", false, false,
     "omit the intermediate's URI name constraint (for OpenSSL-based relying parties, which "
     "mis-parse Wire URIs under it)"},
    {"key-type", true, false, "p256 (default), p384, p521, ed25519, rsa2048, rsa3072, rsa4096",
     "TYPE"},
    {"passphrase-file", true, false, "encrypt both private keys with the passphrase in FILE",
     "FILE"},
    {"help", false, false, "show this help"},
};

}  // namespace

int RunInit(const std::vector<std::string>& argv) {
  auto args = Args::Parse("init", kInitOptions, argv);
  if (!args) {
    std::fprintf(stderr, "%s\n", args.error().detail().c_str());
    return 2;
  }
  if (args->Has("help")) {
    std::printf(
        "Usage: e2eid init --dir DIR [--domain DOMAIN] [--no-name-constraints] [--key-type TYPE] "
        "[--passphrase-file FILE]\n\nCreates a root CA and an issuing intermediate CA. "
        "Never overwrites an existing CA.\n\n%s",
        FormatOptions(kInitOptions).c_str());
    return 0;
  }
  if (!args->positional().empty()) {
    std::fprintf(stderr, "e2eid init: unexpected argument '%s'\n", args->positional()[0].c_str());
    return 2;
  }
  ca::InitOptions options;
  options.dir = *args->Get("dir");
  options.domain = args->GetOr("domain", "");
  options.name_constraints = !args->Has("no-name-constraints");
  auto spec = crypto::ParseKeySpec(args->GetOr("key-type", "p256"));
  if (!spec) {
    std::fprintf(stderr, "e2eid init: --key-type: %s\n", spec.error().detail().c_str());
    return 2;
  }
  options.key_spec = *spec;
  if (auto file = args->Get("passphrase-file")) {
    auto pass = ReadSecretFile(*file);
    if (!pass) {
      std::fprintf(stderr, "e2eid init: --passphrase-file: %s\n", pass.error().detail().c_str());
      return 2;
    }
    options.passphrase = std::move(*pass);
  }
  SystemClock clock;
  crypto::SecureRandom random;
  auto result = ca::InitCa(options, clock, random);
  if (!result) {
    std::fprintf(stderr, "e2eid init: %s\n", result.error().detail().c_str());
    return 1;
  }
  const auto& p = result->paths;
  std::printf("Created a CA in %s (%s keys%s)\n", options.dir.c_str(),
              crypto::KeySpecName(options.key_spec).c_str(),
              options.passphrase ? ", encrypted with the passphrase" : "");
  std::printf("  root certificate:          %s\n", p.root_cert.c_str());
  std::printf("  root key:                  %s (keep it offline)\n", p.root_key.c_str());
  std::printf("  intermediate certificate:  %s\n", p.intermediate_cert.c_str());
  std::printf("  intermediate key:          %s\n", p.intermediate_key.c_str());
  std::printf("  chain (intermediate+root): %s\n", p.chain.c_str());
  std::printf("  root SHA-256 fingerprint:  %s\n", result->root_fingerprint.c_str());
  if (!options.domain.empty() && options.name_constraints) {
    std::printf("  name constraint:           URI names in %s\n", options.domain.c_str());
  }
  return 0;
}

}  // namespace e2eid::cli
