// Test-only: an HttpClient that serves canned responses from memory and counts requests.
//
// Thread-safe: Send, the setters and the counters may be used from several threads at once.
#ifndef E2EID_OIDC_FAKE_HTTP_CLIENT_H_
#define E2EID_OIDC_FAKE_HTTP_CLIENT_H_

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "oidc/http_client.h"

namespace e2eid::oidc::testing {

class FakeHttpClient final : public HttpClient {
 public:
  FakeHttpClient() = default;
  FakeHttpClient(const FakeHttpClient&) = delete;
  FakeHttpClient& operator=(const FakeHttpClient&) = delete;

  // Serves `response` for GET `url` from now on (replacing an earlier one).
  void Serve(const std::string& url, FetchResponse response) {
    std::lock_guard lock(mu_);
    routes_[url] = std::move(response);
  }
  void Serve(const std::string& url, int status, std::string body, HttpHeaders headers = {}) {
    FetchResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    Serve(url, std::move(r));
  }
  // While down, every request fails with kConnection (and is still counted).
  void SetDown(bool down) {
    std::lock_guard lock(mu_);
    down_ = down;
  }

  // Requests sent to `url` so far (including failed ones).
  int Count(const std::string& url) const {
    std::lock_guard lock(mu_);
    const auto it = counts_.find(url);
    return it == counts_.end() ? 0 : it->second;
  }
  int Total() const {
    std::lock_guard lock(mu_);
    int total = 0;
    for (const auto& [url, n] : counts_) total += n;
    return total;
  }
  std::vector<FetchRequest> Requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

  Result<FetchResponse> Send(const FetchRequest& request) override {
    std::lock_guard lock(mu_);
    ++counts_[request.url];
    requests_.push_back(request);
    if (down_) {
      return Fail(ErrorCode::kConnection,
                  request.method + " " + request.url + ": Couldn't connect to server");
    }
    const auto it = routes_.find(request.url);
    if (it == routes_.end()) {
      FetchResponse not_found;
      not_found.status = 404;
      not_found.body = "not found";
      return not_found;
    }
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, FetchResponse> routes_;
  std::map<std::string, int> counts_;
  std::vector<FetchRequest> requests_;
  bool down_ = false;
};

}  // namespace e2eid::oidc::testing

#endif  // E2EID_OIDC_FAKE_HTTP_CLIENT_H_
