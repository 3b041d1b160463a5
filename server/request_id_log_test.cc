// Request ids in log lines: a line logged by a handler carries the id of the request it handles
// (server/http_server.h, RequestIdLogSink).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <vector>

#include "core/log.h"
#include "server/http_server.h"

namespace e2eid::server {
namespace {

// Sends one raw HTTP/1.1 request to 127.0.0.1:port and returns the whole response.
std::string RawRequest(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  (void)::write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return response;
}

class RequestIdLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink(RequestIdLogSink([this](std::string_view line) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(line);
    }));
  }
  void TearDown() override { SetLogSink({}); }
  std::vector<std::string> Lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }
  std::mutex mu_;
  std::vector<std::string> lines_;
};

TEST_F(RequestIdLogTest, HandlerLogLinesCarryTheRequestId) {
  HttpServer server({.threads = 1}, [](const HttpRequest& r) {
    EXPECT_EQ(CurrentRequestId(), r.request_id);
    LogInfo("inside the handler", {{"n", 1}});
    return HttpResponse::Text(200, "ok");
  });
  ASSERT_TRUE(server.Start());
  const std::string response =
      RawRequest(server.port(),
                 "GET /x HTTP/1.1\r\nHost: t\r\nX-Request-Id: req-42\r\nConnection: close\r\n\r\n");
  EXPECT_NE(response.find("X-Request-Id: req-42"), std::string::npos) << response;
  server.Stop();
  LogInfo("outside any request");
  EXPECT_EQ(CurrentRequestId(), "");

  bool inside = false;
  bool access = false;
  bool outside = false;
  for (const std::string& line : Lines()) {
    if (line.find("\"msg\":\"inside the handler\"") != std::string::npos) {
      inside = true;
      EXPECT_EQ(line.rfind("{\"request_id\":\"req-42\",", 0), 0u) << line;
      EXPECT_NE(line.find("\"n\":1"), std::string::npos) << line;
    }
    if (line.find("\"msg\":\"http request\"") != std::string::npos) {
      access = true;
      // Already has its own request_id member: not added twice.
      EXPECT_EQ(line.find("request_id"), line.rfind("request_id")) << line;
    }
    if (line.find("\"msg\":\"outside any request\"") != std::string::npos) {
      outside = true;
      EXPECT_EQ(line.find("request_id"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(inside);
  EXPECT_TRUE(access);
  EXPECT_TRUE(outside);
}

}  // namespace
}  // namespace e2eid::server
