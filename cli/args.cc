#include "cli/args.h"

#include <algorithm>

namespace e2eid::cli {

Result<Args> Args::Parse(const std::string& command, const std::vector<OptionSpec>& specs,
                         const std::vector<std::string>& argv) {
  Args args;
  const std::string prefix = "e2eid " + command + ": ";
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--") {
      for (size_t j = i + 1; j < argv.size(); ++j) args.positional_.push_back(argv[j]);
      break;
    }
    if (a.rfind("--", 0) != 0) {
      args.positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const OptionSpec& s) { return s.name == name; });
    if (spec == specs.end()) {
      return Fail(Error::InvalidArgument(prefix + "unknown option --" + name + " (see e2eid " +
                                         command + " --help)"));
    }
    if (args.values_.count(name) > 0) {
      return Fail(Error::InvalidArgument(prefix + "option --" + name + " given twice"));
    }
    if (!spec->takes_value) {
      if (inline_value) {
        return Fail(Error::InvalidArgument(prefix + "option --" + name + " takes no value"));
      }
      args.values_[name] = "true";
      continue;
    }
    if (inline_value) {
      args.values_[name] = *inline_value;
    } else if (i + 1 < argv.size()) {
      args.values_[name] = argv[++i];
    } else {
      return Fail(Error::InvalidArgument(prefix + "option --" + name + " needs a value (" +
                                         spec->value_name + ")"));
    }
    if (args.values_[name].empty()) {
      return Fail(Error::InvalidArgument(prefix + "option --" + name + " must not be empty"));
    }
  }
  for (const auto& s : specs) {
    if (s.required && args.values_.count(s.name) == 0) {
      return Fail(Error::InvalidArgument(prefix + "missing required option --" + s.name));
    }
  }
  return args;
}

std::optional<std::string> Args::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::GetOr(const std::string& name, const std::string& fallback) const {
  return Get(name).value_or(fallback);
}

std::string FormatOptions(const std::vector<OptionSpec>& specs) {
  std::string out;
  for (const auto& s : specs) {
    std::string left = "  --" + s.name + (s.takes_value ? " " + s.value_name : "");
    if (left.size() < 28)
      left.resize(28, ' ');
    else
      left += "  ";
    out += left + s.help + (s.required ? " (required)" : "") + "\n";
  }
  return out;
}

}  // namespace e2eid::cli
