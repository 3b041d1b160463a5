#include "server/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "core/log.h"

namespace e2eid::server {
namespace {

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

void CheckNames(const std::string& name, const std::vector<std::string>& labels) {
  bool ok = ValidName(name, true);
  for (const auto& l : labels) ok = ok && ValidName(l, false) && l != "le" && !l.starts_with("__");
  if (!ok) {
    LogError("invalid metric or label name", {{"metric", name}});
    std::abort();
  }
}

std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(std::string* out, const std::string& name, const std::string& help,
            std::string_view type) {
  *out += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  *out += "# TYPE " + name + " " + std::string(type) + "\n";
}

// {a="x",b="y"} (with `extra` appended, e.g. le="0.1"); "" when there are no labels at all.
std::string LabelText(const std::vector<std::string>& names, const LabelValues& values,
                      std::string_view extra = {}) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (!extra.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra;
  }
  if (!out.empty()) out += "}";
  return out;
}

bool CheckArity(const std::string& name, const std::vector<std::string>& names,
                const LabelValues& values) {
  if (names.size() == values.size()) return true;
  LogError("metric updated with the wrong number of labels",
           {{"metric", name}, {"expected", names.size()}, {"got", values.size()}});
  return false;
}

}  // namespace

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,    1,     2.5,  5,     10};
  return kBuckets;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

// ---- counters -----------------------------------------------------------------------------------

CounterFamily::CounterFamily(std::string name, std::string help,
                             std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void CounterFamily::Add(const LabelValues& labels, double amount) {
  if (!CheckArity(name_, label_names_, labels)) return;
  if (!(amount >= 0)) return;
  std::lock_guard lock(mu_);
  series_[labels] += amount;
}

double CounterFamily::Value(const LabelValues& labels) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second;
}

void CounterFamily::Render(std::string* out) const {
  Header(out, name_, help_, "counter");
  std::lock_guard lock(mu_);
  if (label_names_.empty() && series_.empty()) {
    *out += name_ + " 0\n";  // a label-less counter is always present
    return;
  }
  for (const auto& [labels, value] : series_) {
    *out += name_ + LabelText(label_names_, labels) + " " + FormatMetricValue(value) + "\n";
  }
}

// ---- histograms ---------------------------------------------------------------------------------

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

void HistogramFamily::Observe(const LabelValues& labels, double value) {
  if (!CheckArity(name_, label_names_, labels)) return;
  if (std::isnan(value)) return;
  size_t bucket = 0;
  while (bucket < buckets_.size() && value > buckets_[bucket]) ++bucket;
  std::lock_guard lock(mu_);
  Series& s = series_[labels];
  if (s.counts.empty()) s.counts.assign(buckets_.size() + 1, 0);
  ++s.counts[bucket];
  s.sum += value;
  ++s.count;
}

uint64_t HistogramFamily::Count(const LabelValues& labels) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.count;
}

void HistogramFamily::Render(std::string* out) const {
  Header(out, name_, help_, "histogram");
  std::lock_guard lock(mu_);
  for (const auto& [labels, s] : series_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= buckets_.size(); ++i) {
      cumulative += s.counts[i];
      const std::string le =
          i < buckets_.size() ? FormatMetricValue(buckets_[i]) : std::string("+Inf");
      *out += name_ + "_bucket" + LabelText(label_names_, labels, "le=\"" + le + "\"") + " " +
              std::to_string(cumulative) + "\n";
    }
    const std::string l = LabelText(label_names_, labels);
    *out += name_ + "_sum" + l + " " + FormatMetricValue(s.sum) + "\n";
    *out += name_ + "_count" + l + " " + std::to_string(s.count) + "\n";
  }
}

// ---- gauges -------------------------------------------------------------------------------------

GaugeFamily::GaugeFamily(std::string name, std::string help, Reader reader)
    : name_(std::move(name)), help_(std::move(help)), reader_(std::move(reader)) {}

void GaugeFamily::Render(std::string* out) const {
  Header(out, name_, help_, "gauge");
  std::optional<double> v;
  try {
    v = reader_ ? reader_() : std::nullopt;
  } catch (...) {
    LogError("a gauge callback threw", {{"metric", name_}});
  }
  if (v) *out += name_ + " " + FormatMetricValue(*v) + "\n";
}

// ---- registry -----------------------------------------------------------------------------------

CounterFamily& MetricsRegistry::Counter(std::string name, std::string help,
                                        std::vector<std::string> labels) {
  CheckNames(name, labels);
  Entry e;
  e.counter = std::make_unique<CounterFamily>(std::move(name), std::move(help), std::move(labels));
  families_.push_back(std::move(e));
  return *families_.back().counter;
}

HistogramFamily& MetricsRegistry::Histogram(std::string name, std::string help,
                                            std::vector<std::string> labels,
                                            std::vector<double> buckets) {
  CheckNames(name, labels);
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
      LogError("histogram buckets must be finite and strictly increasing", {{"metric", name}});
      std::abort();
    }
  }
  Entry e;
  e.histogram = std::make_unique<HistogramFamily>(std::move(name), std::move(help),
                                                  std::move(labels), std::move(buckets));
  families_.push_back(std::move(e));
  return *families_.back().histogram;
}

GaugeFamily& MetricsRegistry::Gauge(std::string name, std::string help,
                                    GaugeFamily::Reader reader) {
  CheckNames(name, {});
  Entry e;
  e.gauge = std::make_unique<GaugeFamily>(std::move(name), std::move(help), std::move(reader));
  families_.push_back(std::move(e));
  return *families_.back().gauge;
}

std::string MetricsRegistry::Render() const {
  std::string out;
  for (const Entry& e : families_) {
    if (e.counter) e.counter->Render(&out);
    if (e.histogram) e.histogram->Render(&out);
    if (e.gauge) e.gauge->Render(&out);
  }
  return out;
}

}  // namespace e2eid::server
