#include "server/signals.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/system/error_code.hpp>
#include <csignal>

#include "core/log.h"
#include "server/http_server.h"

namespace e2eid::server {

struct TerminationSignalWatcher::Impl {
  boost::asio::io_context ioc;
  boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
};

TerminationSignalWatcher::TerminationSignalWatcher() : impl_(std::make_unique<Impl>()) {}

TerminationSignalWatcher::~TerminationSignalWatcher() = default;

int TerminationSignalWatcher::Wait() {
  int received = 0;
  impl_->signals.async_wait([&received](const boost::system::error_code& ec, int signal_number) {
    if (!ec) received = signal_number;
  });
  impl_->ioc.restart();
  impl_->ioc.run();
  LogInfo("termination signal received", {{"signal", received}});
  return received;
}

int WaitForTerminationSignal() {
  TerminationSignalWatcher watcher;
  return watcher.Wait();
}

struct StopOnTerminationSignal::Impl {
  boost::asio::io_context ioc;
  boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
  std::thread thread;
};

StopOnTerminationSignal::StopOnTerminationSignal(HttpServer& server)
    : impl_(std::make_unique<Impl>()) {
  impl_->signals.async_wait([&server](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;  // cancelled by the destructor
    LogInfo("termination signal received, stopping the HTTP server", {{"signal", signal_number}});
    server.Stop();
  });
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

StopOnTerminationSignal::~StopOnTerminationSignal() {
  // signal_set is not thread-safe: cancel on the watching thread. When the signal already came,
  // run() has returned and the posted cancel never runs, which is fine.
  boost::asio::post(impl_->ioc, [impl = impl_.get()] {
    boost::system::error_code ec;
    if (impl->signals.cancel(ec)) {
      LogDebug("cancelling the termination signal watcher failed", {{"error", ec.message()}});
    }
  });
  impl_->thread.join();
}

}  // namespace e2eid::server
