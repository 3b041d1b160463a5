#include "server/work_queue.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <exception>

#include "core/log.h"

namespace e2eid::server {

WorkQueue::WorkQueue(Options options)
    : options_(std::move(options)),
      pool_(std::make_unique<boost::asio::thread_pool>(options_.threads == 0 ? size_t{1}
                                                                             : options_.threads)) {}

WorkQueue::~WorkQueue() { Shutdown(); }

Status WorkQueue::Post(std::function<void()> job) {
  if (!job) return Fail(Error::InvalidArgument("work queue '" + options_.name + "': empty job"));
  std::lock_guard lock(mutex_);
  if (!accepting_) {
    return Fail(Error::Unavailable("work queue '" + options_.name + "' is shutting down"));
  }
  if (options_.max_pending != 0 && pending_.load() >= options_.max_pending) {
    return Fail(Error::Unavailable("work queue '" + options_.name + "' is full (" +
                                   std::to_string(options_.max_pending) + " jobs pending)"));
  }
  pending_.fetch_add(1);
  boost::asio::post(*pool_, [this, job = std::move(job)]() {
    try {
      job();
    } catch (const std::exception& e) {
      LogError("work queue job threw", {{"queue", options_.name}, {"what", e.what()}});
    } catch (...) {
      LogError("work queue job threw", {{"queue", options_.name}, {"what", "unknown exception"}});
    }
    pending_.fetch_sub(1);
  });
  return Ok();
}

void WorkQueue::Shutdown() {
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
  }
  // Without a prior stop(), thread_pool::join() runs every queued job before returning.
  std::call_once(joined_, [this] { pool_->join(); });
}

}  // namespace e2eid::server
