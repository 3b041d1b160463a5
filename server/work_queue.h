// WorkQueue: a fixed pool of threads for jobs that must not run on the HTTP I/O threads because
// they may take long (http-01 / dns-01 validation, OIDC discovery, CRL generation). Handlers post a
// job and answer right away (e.g. the challenge becomes "processing"); the job records its outcome
// itself.
//
// Backed by boost::asio::thread_pool. Jobs run in FIFO order per thread, concurrently across
// threads. A job that throws is logged and dropped; the pool keeps running.
//
// Thread safety: Post() and pending() may be called from any thread. Shutdown() (and the
// destructor) must not be called from a job.
#ifndef E2EID_SERVER_WORK_QUEUE_H_
#define E2EID_SERVER_WORK_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/error.h"

namespace boost::asio {
class thread_pool;
}

namespace e2eid::server {

class WorkQueue {
 public:
  struct Options {
    std::string name = "work";  // shows up in log lines
    size_t threads = 2;         // 0 is treated as 1
    size_t max_pending = 1024;  // queued + running jobs; Post() refuses beyond this (0 = no limit)
  };

  explicit WorkQueue(Options options);
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  // Calls Shutdown().
  ~WorkQueue();

  // Queues `job`. Errors: kUnavailable when the queue is shutting down or already holds
  // max_pending jobs (the caller should answer 503 / retry later); kInvalidArgument for an empty
  // job.
  Status Post(std::function<void()> job);

  // Stops accepting jobs, lets every queued and running job finish, joins the threads.
  // Idempotent; concurrent callers all return once the threads are joined.
  void Shutdown();

  // Jobs queued or running right now.
  size_t pending() const { return pending_.load(); }

 private:
  const Options options_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::mutex mutex_;  // guards accepting_ against Shutdown()
  bool accepting_ = true;
  std::atomic<size_t> pending_{0};
  std::once_flag joined_;
};

}  // namespace e2eid::server

#endif  // E2EID_SERVER_WORK_QUEUE_H_
