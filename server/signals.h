// Termination signals (SIGINT, SIGTERM) for the e2eid service process, via boost::asio::signal_set
// so no code runs in signal context. Typical use in cli/:
//
//   server::HttpServer http(options, router.AsHandler());
//   E2EID_CHECK_OK(http.Start());
//   const int sig = server::WaitForTerminationSignal();   // blocks
//   http.Stop();                                           // graceful
//
// or, to keep the main thread free: `server::StopOnTerminationSignal stopper(http); http.Wait();`.
//
// While a watcher exists SIGINT/SIGTERM no longer terminate the process; when the last one is
// destroyed the default disposition is restored. Create the watcher before starting other threads
// so that it is in place before any signal can arrive.
#ifndef E2EID_SERVER_SIGNALS_H_
#define E2EID_SERVER_SIGNALS_H_

#include <memory>
#include <thread>

namespace e2eid::server {

class HttpServer;

class TerminationSignalWatcher {
 public:
  // Installs the handlers; from this point on SIGINT/SIGTERM are caught.
  TerminationSignalWatcher();
  TerminationSignalWatcher(const TerminationSignalWatcher&) = delete;
  TerminationSignalWatcher& operator=(const TerminationSignalWatcher&) = delete;
  ~TerminationSignalWatcher();

  // Blocks until SIGINT or SIGTERM arrives (or has arrived since construction) and returns its
  // number. Each call consumes one signal. Not thread-safe: one waiter at a time.
  int Wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Installs the handlers, blocks until SIGINT or SIGTERM arrives, returns the signal number.
int WaitForTerminationSignal();

// Calls server.Stop() from a background thread when SIGINT or SIGTERM arrives. Handlers are
// installed when the constructor returns. The destructor stops watching (without calling Stop()
// when no signal came) and joins the thread; `server` must outlive this object.
class StopOnTerminationSignal {
 public:
  explicit StopOnTerminationSignal(HttpServer& server);
  StopOnTerminationSignal(const StopOnTerminationSignal&) = delete;
  StopOnTerminationSignal& operator=(const StopOnTerminationSignal&) = delete;
  ~StopOnTerminationSignal();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace e2eid::server

#endif  // E2EID_SERVER_SIGNALS_H_
