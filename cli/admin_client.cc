#include "cli/admin_client.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <utility>

#include "cli/dpop.h"
#include "cli/oidc_login.h"
#include "core/file.h"
#include "crypto/jwk.h"

namespace e2eid::cli {
namespace {

constexpr std::string_view kApi = "/admin/v1";

const std::vector<OptionSpec> kGlobalOptions = {
    {"server", true, false,
     "base URL of the e2eid service, e.g. https://localhost:8443 (required but for login)", "URL"},
    {"ca-file", true, false, "PEM bundle trusted for the server (default: system trust store)",
     "PEM"},
    {"token-file", true, false,
     "file whose first line is the admin access token (default: $E2EID_ADMIN_TOKEN)", "FILE"},
    {"dpop-key", true, false,
     "private key a DPoP-bound token is bound to (default: $E2EID_ADMIN_DPOP_KEY, else the "
     "token file's name plus .key, as 'e2eid admin login' writes it)",
     "FILE"},
    {"json", false, false, "print the server's JSON instead of a table"},
    {"help", false, false, "show this help"},
};

const std::vector<OptionSpec> kPageOptions = {
    {"limit", true, false, "at most N items (default 100, at most 1000)", "N"},
    {"cursor", true, false, "continue a listing where the previous page ended", "CURSOR"},
};

struct Subcommand {
  std::string name;
  std::string operands;  // for the usage line, e.g. "DEVICE"
  size_t operand_count = 0;
  std::string help;
  std::vector<OptionSpec> options;
  bool paged = false;
};

const std::vector<Subcommand>& Subcommands() {
  static const std::vector<Subcommand> kSubcommands = {
      {"login",
       "",
       0,
       "log in at the identity provider and write the access token (0600) to --out",
       {{"issuer", true, true, "OpenID Connect issuer URL", "URL"},
        {"client-id", true, true, "OpenID Connect client id of the admin CLI", "ID"},
        {"login", true, false,
         "browser (authorization code + PKCE, loopback redirect; the default on a desktop) or "
         "device (RFC 8628 device code)",
         "MODE"},
        {"login-timeout", true, false, "seconds to wait for the login (default 300)", "SECONDS"},
        {"out", true, true, "where to write the access token (mode 0600)", "FILE"}}},
      {"revoke",
       "",
       0,
       "revoke certificates: one (certificate: serial), a device's (device: client-id URI), a "
       "user's (user: user id or IdP subject), a key's (key: SPKI SHA-256 hex) or every one issued "
       "before a time (before: RFC 3339); revoking again changes nothing",
       {{"scope", true, true, "certificate, device, user, key or before", "SCOPE"},
        {"value", true, true, "what the scope names", "VALUE"},
        {"reason", true, true,
         "RFC 5280 reason: a code or a name (unspecified, keyCompromise, cACompromise, "
         "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, aACompromise)",
         "REASON"},
        {"comment", true, false, "free text stored with the revocation", "TEXT"}}},
      {"certificates",
       "",
       0,
       "list certificates (filters combine)",
       {{"user", true, false, "of this user (user id or IdP subject)", "USER"},
        {"device", true, false, "of this device (client-id URI)", "DEVICE"},
        {"spki", true, false, "with this public key (SPKI SHA-256 hex)", "HEX"},
        {"issued-before", true, false, "issued before this RFC 3339 time", "TIME"},
        {"status", true, false, "good or revoked", "STATUS"}},
       true},
      {"certificate", "SERIAL", 1, "show one certificate", {}},
      {"devices",
       "",
       0,
       "list devices",
       {{"user", true, false, "of this user (user id or IdP subject)", "USER"},
        {"status", true, false, "active, blocked or removed", "STATUS"}},
       true},
      {"device", "DEVICE", 1, "show one device and its certificates", {}},
      {"block",
       "DEVICE",
       1,
       "stop a device from enrolling (its certificates stay valid: revoke --scope device for that)",
       {{"reason", true, false, "why (stored with the device)", "TEXT"}}},
      {"unblock", "DEVICE", 1, "let a blocked device enrol again", {}},
      {"users", "", 0, "list users", {}, true},
      {"user", "USER", 1, "show one user and their devices", {}},
      {"disable-user",
       "USER",
       1,
       "stop every device of a user from enrolling (certificates stay valid: revoke --scope user)",
       {{"reason", true, false, "why", "TEXT"}}},
      {"enable-user", "USER", 1, "undo disable-user", {}},
      {"revocations", "", 0, "list the revocation events", {}, true},
      {"audit",
       "",
       0,
       "list the audit trail",
       {{"export", false, false, "print every event as JSON lines (application/x-ndjson)"}},
       true},
      {"me devices", "", 0, "list your own devices (any user's token)", {}},
      {"me remove",
       "DEVICE",
       1,
       "remove one of your own devices: it is blocked for good and its certificates are revoked",
       {}},
  };
  return kSubcommands;
}

const Subcommand* FindSubcommand(std::string_view name) {
  for (const auto& s : Subcommands()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool GlobalTakesValue(std::string_view arg) {
  if (!arg.starts_with("--") || arg.find('=') != std::string_view::npos) return false;
  for (const auto& o : kGlobalOptions) {
    if (arg.substr(2) == o.name) return o.takes_value;
  }
  return false;
}

// Breaks `line` at spaces so that no line is longer than `width`; continuation lines are indented
// by `indent` spaces. The result ends with a newline.
std::string Wrap(std::string_view line, size_t width, size_t indent) {
  std::string out;
  std::string rest(line);
  const size_t text_start = [&] {
    const size_t p = rest.find_first_not_of(' ');
    return p == std::string::npos ? rest.size() : p;
  }();
  size_t min_break = text_start + 1;
  while (rest.size() > width) {
    const size_t space = rest.rfind(' ', width);
    if (space == std::string::npos || space < min_break) break;
    out += rest.substr(0, space) + "\n";
    rest = std::string(indent, ' ') + rest.substr(space + 1);
    min_break = indent + 1;
  }
  return out + rest + "\n";
}

// FormatOptions, each line wrapped to 100 columns and indented by `indent`.
std::string OptionBlock(const std::vector<OptionSpec>& options, size_t indent) {
  const std::string block = FormatOptions(options);
  std::string out;
  size_t pos = 0;
  while (pos < block.size()) {
    size_t nl = block.find('\n', pos);
    if (nl == std::string::npos) nl = block.size();
    const std::string line = std::string(indent, ' ') + block.substr(pos, nl - pos);
    out += Wrap(line, 100, indent + 28);
    pos = nl + 1;
  }
  return out;
}

Error Usage(const std::string& detail) { return Error::InvalidArgument("e2eid admin: " + detail); }

// Control characters could rewrite the terminal: values from the server are shown without them.
std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  return out;
}

std::string Text(const Json& j, std::string_view key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const Json& v = j.at(std::string(key));
  if (v.is_null()) return "";
  if (v.is_string()) return Printable(v.get<std::string>());
  return Printable(DumpJson(v));
}

std::string PageQuery(const Args& args, std::vector<std::pair<std::string, std::string>> fields) {
  for (const char* name : {"limit", "cursor"}) {
    if (auto v = args.Get(name)) fields.emplace_back(name, *v);
  }
  std::string q;
  for (const auto& [name, value] : fields) {
    q += (q.empty() ? "?" : "&") + name + "=" + UrlEncode(value);
  }
  return q;
}

std::string Segment(std::string_view value) { return UrlEncode(value); }

std::vector<std::vector<std::string>> Rows(
    const Json& reply, const std::vector<std::string>& keys,
    const std::map<std::string, std::string>& fallback = {}) {
  std::vector<std::vector<std::string>> rows;
  const Json* items = &reply;
  if (reply.is_object() && reply.contains("items")) items = &reply.at("items");
  if (!items->is_array()) return rows;
  for (const auto& item : *items) {
    std::vector<std::string> row;
    for (const auto& k : keys) {
      std::string v = Text(item, k);
      if (v.empty()) {
        auto it = fallback.find(k);
        if (it != fallback.end()) v = it->second;
      }
      row.push_back(std::move(v));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string CertificateTable(const Json& reply) {
  return RenderTable({"SERIAL", "STATUS", "USER", "DEVICE", "NOT AFTER", "REVOKED AT", "REASON"},
                     Rows(reply, {"serial", "status", "user_id", "device_id", "not_after",
                                  "revoked_at", "reason_name"}));
}

std::string DeviceTable(const Json& reply) {
  return RenderTable({"DEVICE", "USER", "STATUS", "LAST SEEN", "BLOCKED BECAUSE"},
                     Rows(reply, {"id", "user_id", "status", "last_seen", "blocked_reason"}));
}

// "more: --cursor X" when the listing has another page.
std::string More(const Json& reply) {
  const std::string next = Text(reply, "next");
  return next.empty() ? "" : "more: --cursor " + next + "\n";
}

std::string Outcome(const Json& reply, std::string_view what) {
  return std::string(what) + ": " + Text(reply, "affected") + " certificate(s) revoked (event " +
         Text(reply, "event") + ")\n";
}

}  // namespace

Result<AdminCommand> ParseAdminCommand(const std::vector<std::string>& argv) {
  AdminCommand command;
  for (const auto& a : argv) {
    if (a == "--help" || a == "-h") {
      command.name = "help";
      return command;
    }
  }
  // The subcommand is the first word that is neither an option nor a global option's value.
  std::vector<std::string> rest;
  size_t i = 0;
  for (; i < argv.size(); ++i) {
    if (argv[i] == "--") break;
    if (argv[i].starts_with("--")) {
      rest.push_back(argv[i]);
      if (GlobalTakesValue(argv[i]) && i + 1 < argv.size()) rest.push_back(argv[++i]);
      continue;
    }
    command.name = argv[i++];
    break;
  }
  if (command.name.empty()) return Fail(Usage("missing subcommand (see e2eid admin --help)"));
  if (command.name == "me") {
    if (i >= argv.size() || argv[i].starts_with("--")) {
      return Fail(Usage("'me' needs a subcommand: devices or remove"));
    }
    command.name += " " + argv[i++];
  }
  const Subcommand* sub = FindSubcommand(command.name);
  if (sub == nullptr) {
    return Fail(Usage("unknown subcommand '" + command.name + "' (see e2eid admin --help)"));
  }
  rest.insert(rest.end(), argv.begin() + static_cast<std::ptrdiff_t>(i), argv.end());
  std::vector<OptionSpec> specs = kGlobalOptions;
  specs.insert(specs.end(), sub->options.begin(), sub->options.end());
  if (sub->paged) specs.insert(specs.end(), kPageOptions.begin(), kPageOptions.end());
  E2EID_TRY(args, Args::Parse("admin " + command.name, specs, rest));
  command.operands = args.positional();
  command.args = std::move(args);
  if (command.operands.size() != sub->operand_count) {
    if (sub->operand_count == 0) {
      return Fail(Usage(command.name + ": unexpected argument '" + command.operands.front() + "'"));
    }
    return Fail(Usage(command.name + " needs " + sub->operands));
  }
  for (const auto& o : command.operands) {
    if (o.empty()) return Fail(Usage(command.name + ": " + sub->operands + " must not be empty"));
  }
  if (command.name != "login" && !command.args.Has("server")) {
    return Fail(Usage(command.name + ": missing --server URL"));
  }
  return command;
}

std::string AdminUsage() {
  std::string out =
      "Usage: e2eid admin [OPTIONS] SUBCOMMAND [ARGUMENTS] [OPTIONS]\n"
      "\n"
      "Administers an e2eid service through its admin API (/admin/v1) with an access token from\n"
      "the organisation's identity provider. Admin subcommands need the admin role (e2eid-admin\n"
      "by default); 'me' subcommands work with any user's token. The token is read from\n"
      "--token-file FILE or the environment variable E2EID_ADMIN_TOKEN, never from the command\n"
      "line; 'e2eid admin login' obtains one. A DPoP-bound token (RFC 9449) is sent with a proof\n"
      "signed by its key (FILE.key next to the token file, or --dpop-key).\n"
      "\n"
      "Options:\n" +
      OptionBlock(kGlobalOptions, 0) + "\nSubcommands:\n";
  for (const auto& s : Subcommands()) {
    out += "\n  " + s.name + (s.operands.empty() ? "" : " " + s.operands) + "\n";
    out += Wrap("      " + s.help, 100, 6);
    std::vector<OptionSpec> options = s.options;
    if (s.paged) options.insert(options.end(), kPageOptions.begin(), kPageOptions.end());
    if (!options.empty()) out += OptionBlock(options, 4);
  }
  out +=
      "\nDEVICE is a client-id URI (wireapp://USER!DEVICE@DOMAIN); USER is a Wire user id or the\n"
      "identity provider's subject UUID; SERIAL is hex (':' separators allowed).\n"
      "\nExit status: 0 success, 1 the server refused or could not be reached (printed as\n"
      "'error: DETAIL'), 2 usage error.\n"
      "\nExamples:\n"
      "  e2eid admin login --issuer https://kc.example.com/realms/acme --client-id e2eid-admin-cli"
      " \\\n      --out ~/.e2eid-admin-token\n"
      "  export E2EID_ADMIN_TOKEN=$(cat ~/.e2eid-admin-token)"
      " E2EID_ADMIN_DPOP_KEY=~/.e2eid-admin-token.key\n"
      "  e2eid admin --server https://ca.example.com:8443 devices --user alice-uuid\n"
      "  e2eid admin --server https://ca.example.com:8443 revoke --scope device \\\n"
      "      --value 'wireapp://...!1f@example.com' --reason keyCompromise --comment 'stolen'\n";
  return out;
}

Result<AdminRequest> BuildAdminRequest(const AdminCommand& c) {
  const Args& a = c.args;
  const std::string api(kApi);
  auto opt = [&](const char* name) { return a.Get(name); };
  AdminRequest r;
  r.method = "GET";
  if (c.name == "revoke") {
    r.method = "POST";
    r.path = api + "/revocations";
    Json body = {{"scope", *opt("scope")}, {"value", *opt("value")}};
    const std::string reason = *opt("reason");
    if (!reason.empty() && reason.size() <= 2 &&
        std::all_of(reason.begin(), reason.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      body["reason"] = std::stoi(reason);
    } else {
      body["reason"] = reason;
    }
    if (auto comment = opt("comment")) body["comment"] = *comment;
    r.body = std::move(body);
  } else if (c.name == "certificates") {
    std::vector<std::pair<std::string, std::string>> q;
    for (const auto& [flag, param] : {std::pair{"user", "user"},
                                      {"device", "device"},
                                      {"spki", "spki"},
                                      {"issued-before", "issued_before"},
                                      {"status", "status"}}) {
      if (auto v = opt(flag)) q.emplace_back(param, *v);
    }
    r.path = api + "/certificates" + PageQuery(a, std::move(q));
  } else if (c.name == "certificate") {
    r.path = api + "/certificates/" + Segment(c.operands[0]);
  } else if (c.name == "devices") {
    std::vector<std::pair<std::string, std::string>> q;
    for (const char* name : {"user", "status"}) {
      if (auto v = opt(name)) q.emplace_back(name, *v);
    }
    r.path = api + "/devices" + PageQuery(a, std::move(q));
  } else if (c.name == "device") {
    r.path = api + "/devices/" + Segment(c.operands[0]);
  } else if (c.name == "block" || c.name == "unblock") {
    r.method = "POST";
    r.path = api + "/devices/" + Segment(c.operands[0]) + "/" + c.name;
    if (auto reason = opt("reason")) r.body = Json{{"reason", *reason}};
  } else if (c.name == "users") {
    r.path = api + "/users" + PageQuery(a, {});
  } else if (c.name == "user") {
    r.path = api + "/users/" + Segment(c.operands[0]);
  } else if (c.name == "disable-user" || c.name == "enable-user") {
    r.method = "POST";
    r.path = api + "/users/" + Segment(c.operands[0]) +
             (c.name == "disable-user" ? "/disable" : "/enable");
    if (auto reason = opt("reason")) r.body = Json{{"reason", *reason}};
  } else if (c.name == "revocations") {
    r.path = api + "/revocations" + PageQuery(a, {});
  } else if (c.name == "audit") {
    if (a.Has("export")) {
      if (a.Has("limit") || a.Has("cursor")) {
        return Fail(Usage("audit --export exports every event: no --limit or --cursor"));
      }
      r.path = api + "/audit/export";
      r.raw = true;
    } else {
      r.path = api + "/audit" + PageQuery(a, {});
    }
  } else if (c.name == "me devices") {
    r.path = api + "/me/devices";
  } else if (c.name == "me remove") {
    r.method = "POST";
    r.path = api + "/me/devices/" + Segment(c.operands[0]) + "/remove";
  } else {
    return Fail(Usage("'" + c.name + "' does not talk to the admin API"));
  }
  return r;
}

std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) widths[i] = headers[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < cells.size() ? Printable(cells[i]) : "";
      if (i + 1 == widths.size()) {
        out += cell;
      } else {
        out += cell + std::string(widths[i] - cell.size() + 2, ' ');
      }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(headers);
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string RenderAdminReply(const AdminCommand& c, const Json& reply) {
  const std::string& n = c.name;
  if (n == "revoke") return Outcome(reply, "revoked");
  if (n == "me remove") return Outcome(reply, "removed device " + c.operands[0]);
  if (n == "certificates") return CertificateTable(reply) + More(reply);
  if (n == "certificate") {
    return RenderTable({"FIELD", "VALUE"}, {{"serial", Text(reply, "serial")},
                                            {"status", Text(reply, "status")},
                                            {"user", Text(reply, "user_id")},
                                            {"device", Text(reply, "device_id")},
                                            {"key (SPKI SHA-256)", Text(reply, "spki_sha256")},
                                            {"not before", Text(reply, "not_before")},
                                            {"not after", Text(reply, "not_after")},
                                            {"revoked at", Text(reply, "revoked_at")},
                                            {"reason", Text(reply, "reason_name")},
                                            {"comment", Text(reply, "comment")}});
  }
  if (n == "devices" || n == "me devices") return DeviceTable(reply) + More(reply);
  if (n == "device" || n == "block" || n == "unblock") {
    std::string out = "device " + Text(reply, "id") + " (user " + Text(reply, "user_id") +
                      "): " + Text(reply, "status");
    const std::string why = Text(reply, "blocked_reason");
    if (!why.empty()) out += " (" + why + ")";
    out += "\n";
    if (n == "device" && reply.contains("certificates")) {
      out += "\n" + CertificateTable(reply.at("certificates"));
    }
    return out;
  }
  if (n == "users") {
    return RenderTable({"USER", "HANDLE", "NAME", "STATUS", "LAST SEEN"},
                       Rows(reply, {"id", "handle", "display_name", "status", "last_seen"})) +
           More(reply);
  }
  if (n == "user" || n == "disable-user" || n == "enable-user") {
    std::string out = "user " + Text(reply, "id") + " (" + Text(reply, "handle") + ", " +
                      Text(reply, "display_name") + "): " + Text(reply, "status") + "\n";
    if (n == "user" && reply.contains("devices")) out += "\n" + DeviceTable(reply.at("devices"));
    return out;
  }
  if (n == "revocations") {
    return RenderTable({"ID", "AT", "SCOPE", "VALUE", "REASON", "AFFECTED", "ACTOR", "COMMENT"},
                       Rows(reply, {"id", "at", "scope", "value", "reason_name", "affected",
                                    "actor", "comment"})) +
           More(reply);
  }
  if (n == "audit") {
    return RenderTable(
               {"ID", "AT", "ACTOR", "ACTION", "TARGET", "SOURCE", "OUTCOME"},
               Rows(reply, {"id", "at", "actor", "action", "target", "source", "outcome"})) +
           More(reply);
  }
  return Printable(DumpJson(reply, 2)) + "\n";
}

Result<std::string> LoadAdminToken(const std::optional<std::string>& token_file) {
  std::string text;
  std::string where;
  if (token_file) {
    E2EID_TRY(content, ReadFile(*token_file));
    text = std::move(content);
    where = *token_file;
  } else if (const char* env = std::getenv(kAdminTokenEnv); env != nullptr) {
    text = env;
    where = kAdminTokenEnv;
  } else {
    return Fail(
        Error::InvalidArgument(std::string("no admin token: use --token-file FILE or set ") +
                               kAdminTokenEnv + " (e2eid admin login writes one)"));
  }
  std::string token = text.substr(0, text.find_first_of("\r\n"));
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.pop_back();
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.erase(0, 1);
  if (token.empty() || token.find_first_of(" \t") != std::string::npos) {
    return Fail(
        Error::InvalidArgument(where + ": no token (expected the token on the first line)"));
  }
  return token;
}

std::string AdminDpopKeyPath(std::string_view token_file) {
  return std::string(token_file) + ".key";
}

Result<std::optional<crypto::PrivateKey>> LoadAdminDpopKey(
    const std::optional<std::string>& key_file, const std::optional<std::string>& token_file,
    std::string_view token) {
  const std::optional<std::string> jkt = AccessTokenJkt(token);
  if (!jkt) return std::optional<crypto::PrivateKey>();
  std::string path;
  if (key_file) {
    path = *key_file;
  } else if (const char* env = std::getenv(kAdminDpopKeyEnv); env != nullptr && *env != '\0') {
    path = env;
  } else if (token_file && PathExists(AdminDpopKeyPath(*token_file))) {
    path = AdminDpopKeyPath(*token_file);
  } else {
    return Fail(Error::InvalidArgument(
        "the admin token is DPoP-bound (RFC 9449) and its key was not found: give --dpop-key "
        "FILE or set " +
        std::string(kAdminDpopKeyEnv) + " (e2eid admin login writes it next to the token as " +
        AdminDpopKeyPath(token_file.value_or("FILE")) + ")"));
  }
  E2EID_TRY(pem, ReadFile(path));
  auto key = crypto::PrivateKey::FromPem(pem);
  if (!key) return Fail(std::move(key.error()).Context(path));
  E2EID_TRY(pub, key->public_key());
  E2EID_TRY(thumbprint, crypto::JwkThumbprint(pub));
  if (thumbprint != *jkt) {
    return Fail(Error::InvalidArgument(path + ": not the key the admin token is bound to"));
  }
  return std::optional<crypto::PrivateKey>(std::move(*key));
}

void AdminClient::UseDpop(const crypto::PrivateKey& key, const Clock& clock, RandomSource& rng) {
  dpop_key_ = &key;
  clock_ = &clock;
  rng_ = &rng;
}

AdminClient::AdminClient(oidc::HttpClient& http, std::string server, std::string token)
    : http_(http), server_(std::move(server)), token_(std::move(token)) {
  while (!server_.empty() && server_.back() == '/') server_.pop_back();
}

Result<std::string> AdminClient::Send(const AdminRequest& request) {
  oidc::FetchRequest fetch;
  fetch.method = request.method;
  fetch.url = server_ + request.path;
  fetch.headers = {{"Authorization", "Bearer " + token_},
                   {"Accept", request.raw ? "application/x-ndjson" : "application/json"}};
  if (dpop_key_ != nullptr) {
    E2EID_TRY(
        proof,
        MakeDpopProof(*dpop_key_, {.htm = request.method, .htu = fetch.url, .access_token = token_},
                      clock_->Now(), *rng_));
    fetch.headers[0].second = "DPoP " + token_;
    fetch.headers.emplace_back("DPoP", std::move(proof));
  }
  if (request.body) {
    fetch.headers.emplace_back("Content-Type", "application/json");
    fetch.body = DumpJson(*request.body);
  }
  E2EID_TRY(response, http_.Send(fetch));
  if (response.status >= 200 && response.status < 300) return std::move(response.body);

  std::string detail;
  if (auto doc = ParseJson(response.body, "problem document");
      doc && doc->is_object() && doc->contains("detail") && (*doc)["detail"].is_string()) {
    detail = Printable((*doc)["detail"].get<std::string>());
  } else {
    detail = request.method + " " + fetch.url + ": the server answered HTTP " +
             std::to_string(response.status);
  }
  switch (response.status) {
    case 400:
    case 415:
      return Fail(Error::InvalidArgument(std::move(detail)));
    case 401:
      return Fail(Error::Unauthenticated(std::move(detail)));
    case 403:
      return Fail(Error::Forbidden(std::move(detail)));
    case 404:
      return Fail(Error::NotFound(std::move(detail)));
    case 409:
      return Fail(Error::Conflict(std::move(detail)));
    case 503:
      return Fail(Error::Unavailable(std::move(detail)));
    default:
      return Fail(Error::Io(std::move(detail)));
  }
}

}  // namespace e2eid::cli
