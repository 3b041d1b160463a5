// The pieces of `e2eid admin` (cli/admin_command.cc) that need no server: the command line, the
// request each subcommand sends to the admin API (server/admin_api.h), the HTTP client for that
// API, and the human-readable rendering of its answers.
//
// Thread safety: the free functions are pure; AdminClient is as thread-safe as its HttpClient.
#ifndef E2EID_CLI_ADMIN_CLIENT_H_
#define E2EID_CLI_ADMIN_CLIENT_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/random.h"
#include "crypto/key.h"
#include "oidc/http_client.h"

namespace e2eid::cli {

// Environment variable holding the admin access token (when --token-file is not given).
inline constexpr char kAdminTokenEnv[] = "E2EID_ADMIN_TOKEN";
// Environment variable naming the DPoP key file of a DPoP-bound token (when --dpop-key is not
// given).
inline constexpr char kAdminDpopKeyEnv[] = "E2EID_ADMIN_DPOP_KEY";

// A parsed `e2eid admin [GLOBAL OPTIONS] SUBCOMMAND [OPERANDS] [OPTIONS]` (global options may
// also follow the subcommand).
struct AdminCommand {
  std::string name;  // "login", "revoke", ..., "me devices", "me remove"; "help" for --help
  Args args;
  std::vector<std::string> operands;  // e.g. the DEVICE of `block DEVICE`
};

// Errors (usage, exit code 2): kInvalidArgument "e2eid admin: ..." naming the unknown
// subcommand, option or the missing operand/option.
Result<AdminCommand> ParseAdminCommand(const std::vector<std::string>& argv);

// The text of `e2eid admin --help`: every subcommand and option.
std::string AdminUsage();

// What a subcommand sends: `path` is relative to the server URL and includes the query.
struct AdminRequest {
  std::string method;  // "GET" or "POST"
  std::string path;    // e.g. "/admin/v1/devices?user=..."
  std::optional<Json> body;
  bool raw = false;  // the answer is not JSON (audit export: JSON lines)
};
// For every subcommand but "login" and "help". Errors: kInvalidArgument for an option value the
// command refuses before sending (e.g. --reason that is neither a number nor a name).
Result<AdminRequest> BuildAdminRequest(const AdminCommand& command);

// The answer as the user sees it without --json: a table for listings, one line for actions.
// Values from the server are printed with control characters replaced by '?'.
std::string RenderAdminReply(const AdminCommand& command, const Json& reply);

// Columns padded to their widest cell, separated by two spaces, a header line first.
std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// Reads the admin token: the first line of `token_file` when given, else $E2EID_ADMIN_TOKEN.
// Errors: kInvalidArgument when there is none; those of ReadFile.
Result<std::string> LoadAdminToken(const std::optional<std::string>& token_file);

// Where `e2eid admin login --out FILE` keeps the private key (PEM, 0600) its DPoP-bound token is
// bound to: FILE.key.
std::string AdminDpopKeyPath(std::string_view token_file);

// The key a DPoP-bound `token` (claim "cnf"."jkt") must be presented with: --dpop-key FILE, else
// $E2EID_ADMIN_DPOP_KEY, else AdminDpopKeyPath(token_file) when that file exists. nullopt for an
// unbound token (sent as Bearer). Errors: kInvalidArgument when the token is bound and no key is
// found, or the key is not the one the token is bound to; those of ReadFile and key parsing.
Result<std::optional<crypto::PrivateKey>> LoadAdminDpopKey(
    const std::optional<std::string>& key_file, const std::optional<std::string>& token_file,
    std::string_view token);

// Talks to the admin API at `server` (e.g. "https://ca.example.com:8443") with a bearer token,
// or, after UseDpop, a DPoP-bound token with a fresh RFC 9449 proof per request.
// HTTP errors become Errors carrying the problem document's "detail": 400 kInvalidArgument, 401
// kUnauthenticated, 403 kForbidden, 404 kNotFound, 409 kConflict, 503 kUnavailable, other
// statuses kIo. Transport errors are those of HttpClient::Send.
class AdminClient {
 public:
  // `http` must outlive the client.
  AdminClient(oidc::HttpClient& http, std::string server, std::string token);
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  // From now on sends `Authorization: DPoP <token>` and a `DPoP` proof signed by `key` (htm, htu
  // = the request URL without query, ath = the token's hash). All three must outlive the client.
  void UseDpop(const crypto::PrivateKey& key, const Clock& clock, RandomSource& rng);

  // Sends `request`; the reply body (JSON text, or the raw body for raw requests).
  Result<std::string> Send(const AdminRequest& request);

 private:
  oidc::HttpClient& http_;
  std::string server_;
  std::string token_;
  const crypto::PrivateKey* dpop_key_ = nullptr;
  const Clock* clock_ = nullptr;
  RandomSource* rng_ = nullptr;
};

}  // namespace e2eid::cli

#endif  // E2EID_CLI_ADMIN_CLIENT_H_
