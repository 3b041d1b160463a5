// A small, strict command-line parser for the `e2eid` binary: `--name value`, `--name=value` and
// boolean `--flag`. Unknown options, missing values and repeated options are errors that name the
// option and the command, so a typo never silently changes behaviour.
#ifndef E2EID_CLI_ARGS_H_
#define E2EID_CLI_ARGS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace e2eid::cli {

struct OptionSpec {
  std::string name;  // without the leading "--"
  bool takes_value = true;
  bool required = false;
  std::string help;
  std::string value_name = "VALUE";
};

class Args {
 public:
  // Parses argv (without the program and command names) against `specs`.
  // Errors: kInvalidArgument "e2eid <command>: unknown option --x" and the like.
  static Result<Args> Parse(const std::string& command, const std::vector<OptionSpec>& specs,
                            const std::vector<std::string>& argv);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, const std::string& fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// "  --dir DIR      where to create the CA (required)" lines for `e2eid <command> --help`.
std::string FormatOptions(const std::vector<OptionSpec>& specs);

}  // namespace e2eid::cli

#endif  // E2EID_CLI_ARGS_H_
