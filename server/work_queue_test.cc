#include "server/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

namespace e2eid::server {
namespace {

TEST(WorkQueueTest, RunsJobsOffTheCallingThread) {
  WorkQueue queue({.name = "test", .threads = 2});
  std::promise<std::thread::id> ran_on;
  ASSERT_TRUE(queue.Post([&] { ran_on.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(ran_on.get_future().get(), std::this_thread::get_id());
}

TEST(WorkQueueTest, ShutdownRunsQueuedJobsThenRefuses) {
  WorkQueue queue({.name = "test", .threads = 1, .max_pending = 0});
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(queue.Post([&] { done.fetch_add(1); }));
  }
  queue.Shutdown();
  EXPECT_EQ(done.load(), 100);
  EXPECT_EQ(queue.pending(), 0u);
  const Status refused = queue.Post([] {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  queue.Shutdown();  // idempotent
}

TEST(WorkQueueTest, RefusesBeyondMaxPending) {
  WorkQueue queue({.name = "test", .threads = 1, .max_pending = 2});
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(queue.Post([&] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();
  ASSERT_TRUE(queue.Post([] {}));  // queued behind the blocked job
  const Status full = queue.Post([] {});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(full.error().detail().find("full"), std::string::npos);
  release.set_value();
  queue.Shutdown();
  EXPECT_EQ(queue.pending(), 0u);
}

TEST(WorkQueueTest, ThrowingJobDoesNotKillThePool) {
  WorkQueue queue({.name = "test", .threads = 1});
  ASSERT_TRUE(queue.Post([] { throw std::runtime_error("boom"); }));
  std::promise<int> next;
  ASSERT_TRUE(queue.Post([&] { next.set_value(7); }));
  EXPECT_EQ(next.get_future().get(), 7);
  EXPECT_FALSE(queue.Post(std::function<void()>()));
}

}  // namespace
}  // namespace e2eid::server
