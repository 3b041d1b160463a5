#include "oidc/quote.h"

namespace e2eid::oidc {

std::string Quote(std::string_view s, size_t max_chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  const std::string_view shown = s.substr(0, max_chars);
  for (char c : shown) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > shown.size()) out += "...";
  out.push_back('"');
  return out;
}

}  // namespace e2eid::oidc
