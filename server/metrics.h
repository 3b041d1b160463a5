// A small Prometheus metrics registry (no third-party library): counters, gauges computed at scrape
// time, and histograms, each with labels, rendered in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Usage: create the families once at start (Counter(), Histogram(), Gauge() return references that
// stay valid as long as the registry), then update them from any thread:
//
//   MetricsRegistry metrics;
//   CounterFamily& requests = metrics.Counter("e2eid_http_requests_total", "HTTP requests.",
//                                             {"route", "method", "status"});
//   requests.Add({"/acme/new-order", "POST", "201"});
//   std::string text = metrics.Render();
//
// Rendering: families in registration order, each with "# HELP" and "# TYPE" lines; series of a
// family sorted by their label values. Label values are escaped (backslash, double quote, line
// feed), HELP text too (backslash, line feed). Histograms render cumulative "_bucket" series with
// an "le" label (the fixed upper bounds, then "+Inf"), "_sum" and "_count". Numbers use the
// shortest round-trip representation; +Inf/-Inf/NaN are spelled as Prometheus expects.
//
// Cardinality is the caller's business: label values must come from bounded sets (route
// patterns, not raw paths). A call with the wrong number of label values is a programming error:
// it is logged and ignored (it never throws and never crashes a request).
//
// Thread safety: registration (Counter/Histogram/Gauge) must finish before the registry is shared.
// Add/Observe and Render may then run concurrently from any number of threads. Gauge callbacks run
// on the thread calling Render() and must be thread-safe.
#ifndef E2EID_SERVER_METRICS_H_
#define E2EID_SERVER_METRICS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace e2eid::server {

using LabelValues = std::vector<std::string>;

// The content type of Render()'s output.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Fixed latency buckets in seconds (1 ms .. 10 s), for request and store durations.
const std::vector<double>& LatencyBuckets();

// Escapes a label value for the exposition format: \ -> \\, " -> \", line feed -> \n.
std::string EscapeLabelValue(std::string_view value);
// Formats a sample value: integers without a fraction, "+Inf", "-Inf", "NaN".
std::string FormatMetricValue(double value);

class CounterFamily {
 public:
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names);
  CounterFamily(const CounterFamily&) = delete;
  CounterFamily& operator=(const CounterFamily&) = delete;

  // Adds `amount` (must be >= 0; negative amounts are ignored) to the series with these labels,
  // creating it at 0 first.
  void Add(const LabelValues& labels, double amount = 1);
  // The current value of a series (0 when it does not exist). For tests.
  double Value(const LabelValues& labels) const;

  void Render(std::string* out) const;

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  mutable std::mutex mu_;
  std::map<LabelValues, double> series_;
};

class HistogramFamily {
 public:
  // `buckets`: strictly increasing finite upper bounds; "+Inf" is implicit.
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> buckets);
  HistogramFamily(const HistogramFamily&) = delete;
  HistogramFamily& operator=(const HistogramFamily&) = delete;

  void Observe(const LabelValues& labels, double value);
  // Observations of a series so far (0 when it does not exist). For tests.
  uint64_t Count(const LabelValues& labels) const;

  void Render(std::string* out) const;

 private:
  struct Series {
    std::vector<uint64_t> counts;  // per bucket (not cumulative), plus one for +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;
  mutable std::mutex mu_;
  std::map<LabelValues, Series> series_;
};

// A gauge without labels whose value is read at scrape time; a callback returning nullopt leaves
// the sample out (e.g. no CRL yet).
class GaugeFamily {
 public:
  using Reader = std::function<std::optional<double>()>;
  GaugeFamily(std::string name, std::string help, Reader reader);
  GaugeFamily(const GaugeFamily&) = delete;
  GaugeFamily& operator=(const GaugeFamily&) = delete;

  void Render(std::string* out) const;

 private:
  const std::string name_;
  const std::string help_;
  const Reader reader_;
};

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registration. `name` and label names must match [a-zA-Z_:][a-zA-Z0-9_:]* (label names without
  // ':'); "le" is reserved for histograms. Invalid names are a programming error (std::abort in
  // every build: registration happens once, at start).
  CounterFamily& Counter(std::string name, std::string help, std::vector<std::string> labels = {});
  HistogramFamily& Histogram(std::string name, std::string help, std::vector<std::string> labels,
                             std::vector<double> buckets = LatencyBuckets());
  GaugeFamily& Gauge(std::string name, std::string help, GaugeFamily::Reader reader);

  // The whole exposition text.
  std::string Render() const;

 private:
  struct Entry {
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<HistogramFamily> histogram;
    std::unique_ptr<GaugeFamily> gauge;
  };
  std::vector<Entry> families_;
};

}  // namespace e2eid::server

#endif  // E2EID_SERVER_METRICS_H_
