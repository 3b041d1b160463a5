#include "server/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace e2eid::server {
namespace {

TEST(MetricsTest, CounterExpositionFormat) {
  MetricsRegistry m;
  CounterFamily& c =
      m.Counter("e2eid_http_requests_total", "HTTP requests.", {"route", "method", "status"});
  c.Add({"/b", "GET", "200"});
  c.Add({"/a", "POST", "201"}, 2);
  c.Add({"/b", "GET", "200"});
  EXPECT_EQ(m.Render(),
            "# HELP e2eid_http_requests_total HTTP requests.\n"
            "# TYPE e2eid_http_requests_total counter\n"
            "e2eid_http_requests_total{route=\"/a\",method=\"POST\",status=\"201\"} 2\n"
            "e2eid_http_requests_total{route=\"/b\",method=\"GET\",status=\"200\"} 2\n");
  EXPECT_EQ(c.Value({"/b", "GET", "200"}), 2);
  EXPECT_EQ(c.Value({"/c", "GET", "200"}), 0);
}

TEST(MetricsTest, LabelLessCounterIsAlwaysPresentAndNegativeAddsAreIgnored) {
  MetricsRegistry m;
  CounterFamily& c = m.Counter("x_total", "X.");
  EXPECT_EQ(m.Render(), "# HELP x_total X.\n# TYPE x_total counter\nx_total 0\n");
  c.Add({}, -5);
  c.Add({}, std::numeric_limits<double>::quiet_NaN());
  c.Add({}, 1.5);
  EXPECT_EQ(m.Render(), "# HELP x_total X.\n# TYPE x_total counter\nx_total 1.5\n");
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry m;
  CounterFamily& c = m.Counter("y_total", "line one\nback\\slash", {"reason"});
  c.Add({"a\"b\\c\nd"});
  EXPECT_EQ(m.Render(),
            "# HELP y_total line one\\nback\\\\slash\n"
            "# TYPE y_total counter\n"
            "y_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n");
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
}

TEST(MetricsTest, WrongLabelArityIsIgnored) {
  MetricsRegistry m;
  CounterFamily& c = m.Counter("z_total", "Z.", {"a", "b"});
  c.Add({"only-one"});
  EXPECT_EQ(c.Value({"only-one"}), 0);
  EXPECT_EQ(m.Render(), "# HELP z_total Z.\n# TYPE z_total counter\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry m;
  HistogramFamily& h = m.Histogram("d_seconds", "Durations.", {"route"}, {0.1, 1});
  h.Observe({"/r"}, 0.05);
  h.Observe({"/r"}, 0.1);  // on the bound: counted in le="0.1"
  h.Observe({"/r"}, 0.5);
  h.Observe({"/r"}, 7);
  EXPECT_EQ(m.Render(),
            "# HELP d_seconds Durations.\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{route=\"/r\",le=\"0.1\"} 2\n"
            "d_seconds_bucket{route=\"/r\",le=\"1\"} 3\n"
            "d_seconds_bucket{route=\"/r\",le=\"+Inf\"} 4\n"
            "d_seconds_sum{route=\"/r\"} 7.65\n"
            "d_seconds_count{route=\"/r\"} 4\n");
  EXPECT_EQ(h.Count({"/r"}), 4u);
}

TEST(MetricsTest, HistogramWithoutLabelsAndDefaultBuckets) {
  MetricsRegistry m;
  HistogramFamily& h = m.Histogram("s_seconds", "S.", {});
  h.Observe({}, 0.003);
  const std::string text = m.Render();
  EXPECT_NE(text.find("s_seconds_bucket{le=\"0.0025\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("s_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("s_seconds_bucket{le=\"10\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("s_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("s_seconds_count 1\n"), std::string::npos) << text;
  EXPECT_EQ(LatencyBuckets().size(), 13u);
}

TEST(MetricsTest, GaugesAreReadAtScrapeTime) {
  MetricsRegistry m;
  std::optional<double> value;
  m.Gauge("g", "G.", [&] { return value; });
  EXPECT_EQ(m.Render(), "# HELP g G.\n# TYPE g gauge\n");
  value = 42;
  EXPECT_EQ(m.Render(), "# HELP g G.\n# TYPE g gauge\ng 42\n");
  value = 1.25;
  EXPECT_EQ(m.Render(), "# HELP g G.\n# TYPE g gauge\ng 1.25\n");
}

TEST(MetricsTest, ValueFormatting) {
  EXPECT_EQ(FormatMetricValue(3), "3");
  EXPECT_EQ(FormatMetricValue(0.001), "0.001");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsTest, FamiliesRenderInRegistrationOrder) {
  MetricsRegistry m;
  m.Counter("b_total", "B.");
  m.Counter("a_total", "A.");
  const std::string text = m.Render();
  EXPECT_LT(text.find("b_total"), text.find("a_total"));
}

TEST(MetricsDeathTest, InvalidNamesAbort) {
  EXPECT_DEATH(
      {
        MetricsRegistry m;
        m.Counter("bad-name", "x");
      },
      "");
  EXPECT_DEATH(
      {
        MetricsRegistry m;
        m.Histogram("h", "x", {"le"});
      },
      "");
}

TEST(MetricsTest, ConcurrentUpdatesAndScrapesLoseNothing) {
  MetricsRegistry m;
  CounterFamily& c = m.Counter("c_total", "C.", {"t"});
  HistogramFamily& h = m.Histogram("h_seconds", "H.", {"t"});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        c.Add({t % 2 == 0 ? "even" : "odd"});
        h.Observe({"all"}, 0.002);
        if (i % 500 == 0) (void)m.Render();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value({"even"}) + c.Value({"odd"}), kThreads * kPerThread);
  EXPECT_EQ(h.Count({"all"}), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_NE(m.Render().find("h_seconds_bucket{t=\"all\",le=\"+Inf\"} 40000\n"), std::string::npos);
}

}  // namespace
}  // namespace e2eid::server
