// Revocation benchmark: revoking a large scope, building a large CRL, OCSP responses per second.
// Results and the command line: bench/README.md, section "Revocation".
//
//   revocation_bench [--scope N] [--crl N] [--ocsp-seconds S] [--der-bytes B] [--chain-bytes B]
//                    [--keep]
//
// Everything runs against a real SQLite store (production settings: WAL, synchronous=FULL) in a
// fresh temporary directory. Certificates are inserted directly into the store with fake DER and
// chain blobs of realistic size (the revocation paths never parse them); only the OCSP responder's
// own certificate and the CA are real.
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "ca/authority.h"
#include "ca/issuer.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/log.h"
#include "crypto/openssl.h"
#include "crypto/random.h"
#include "revocation/crl.h"
#include "revocation/ocsp.h"
#include "revocation/service.h"
#include "store/sqlite_store.h"

namespace e2eid::bench {
namespace {

using Seconds = std::chrono::duration<double>;
using Steady = std::chrono::steady_clock;

struct Options {
  int64_t scope = 100000;      // (a) certificates of one user, revoked in one call
  int64_t crl = 1000000;       // (b) CRL entries (including the scope's)
  double ocsp_seconds = 3.0;   // (c) duration of each OCSP measurement
  int64_t ocsp_certs = 10000;  // distinct serials the OCSP load asks about
  size_t der_bytes = 700;      // fake certificate DER per row
  size_t chain_bytes = 2400;   // fake chain PEM per row
  bool keep = false;
};

[[noreturn]] void Die(const std::string& what, const Error& e) {
  std::fprintf(stderr, "revocation_bench: %s: %s\n", what.c_str(), e.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r) Die(what, r.error());
  return std::move(*r);
}

void Must(const Status& s, const std::string& what) {
  if (!s) Die(what, s.error());
}

class StoreSerials final : public ca::SerialRegistry {
 public:
  StoreSerials(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}
  Status Reserve(const std::string& serial_hex) override {
    const TimePoint now = clock_.Now();
    return store_.InTransaction(
        [&](store::Transaction& tx) { return tx.ReserveSerial(serial_hex, now); });
  }

 private:
  store::Store& store_;
  const Clock& clock_;
};

std::string RandomSerial(RandomSource& random) {
  uint8_t b[16];
  Must(random.Fill(b), "random");
  b[0] &= 0x7f;
  b[0] |= 0x10;  // 32 hex digits, no leading zero
  return HexEncode(b);
}

// "wireapp://<user>!<n>@example.com" (built with append: GCC 12 warns falsely on operator+ chains).
std::string DeviceId(const std::string& user_id, int64_t n) {
  std::string id = "wireapp://";
  id.append(user_id).append("!").append(std::to_string(n)).append("@example.com");
  return id;
}

// CPU seconds (user + system) used by this process so far: SQLite runs in-process, so this is
// the cost of an operation independent of other load on the machine.
double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Lap {
  double wall = 0;  // seconds
  double cpu = 0;   // CPU seconds of this process
};

template <typename F>
Lap Measure(F&& f) {
  const double c0 = CpuSeconds();
  const auto t0 = Steady::now();
  f();
  return {Seconds(Steady::now() - t0).count(), CpuSeconds() - c0};
}

// Inserts `count` certificates for `user_id` (spread over `devices` devices), in transactions of
// 10,000. When `revoked`, they are inserted as already revoked (reason cycling 0, 1, 4, 5).
std::vector<std::string> InsertCertificates(store::Store& store, const Clock& clock,
                                            RandomSource& random, const Options& o,
                                            const std::string& user_id, int64_t count, int devices,
                                            bool revoked, const std::string& issuer_id) {
  const TimePoint now = clock.Now();
  Must(store.InTransaction([&](store::Transaction& tx) -> Status {
    store::User u;
    u.id = user_id;
    u.handle = user_id;
    u.display_name = user_id;
    u.first_seen = u.last_seen = now;
    E2EID_CHECK_OK(tx.InsertUser(u));
    for (int d = 0; d < devices; ++d) {
      store::Device dev;
      dev.id = DeviceId(user_id, d);
      dev.user_id = user_id;
      dev.display_name = user_id;
      dev.handle = user_id;
      dev.key_thumbprint = DeviceId("t", d);
      dev.first_seen = dev.last_seen = now;
      E2EID_CHECK_OK(tx.InsertDevice(dev));
    }
    return Ok();
  }),
       "inserting user");
  std::vector<std::string> serials;
  serials.reserve(static_cast<size_t>(count));
  const Bytes der(o.der_bytes, 0x42);
  const std::string chain(o.chain_bytes, 'C');
  constexpr int64_t kBatch = 10000;
  static constexpr int kReasons[] = {0, 1, 4, 5};
  for (int64_t done = 0; done < count; done += kBatch) {
    const int64_t n = std::min(kBatch, count - done);
    Must(store.InTransaction([&](store::Transaction& tx) -> Status {
      for (int64_t i = 0; i < n; ++i) {
        store::Certificate c;
        c.serial = RandomSerial(random);
        c.issuer_id = issuer_id;
        c.user_id = user_id;
        c.device_id = DeviceId(user_id, (done + i) % devices);
        c.spki_sha256 = HexEncode(std::vector<uint8_t>(32, static_cast<uint8_t>(i)));
        c.not_before = now - std::chrono::hours(1);
        c.not_after = now + std::chrono::hours(23);
        c.issued_at = now - std::chrono::hours(1);
        c.der = der;
        c.chain_pem = chain;
        if (revoked) {
          c.status = store::CertificateStatus::kRevoked;
          c.revoked_at = now - std::chrono::minutes(30);
          c.revocation_reason = kReasons[(done + i) % 4];
        }
        E2EID_CHECK_OK(tx.ReserveSerial(c.serial, now));
        E2EID_CHECK_OK(tx.InsertCertificate(c));
        serials.push_back(c.serial);
      }
      return Ok();
    }),
         "inserting certificates");
  }
  return serials;
}

// An OCSPRequest (one SHA-1 CertID, no nonce) for `serial_hex` issued by `issuer`.
std::string OcspRequestFor(X509* issuer, const std::string& serial_hex) {
  auto bytes = Must(HexDecode(serial_hex), "serial");
  auto serial = Must(crypto::Asn1IntegerFromBytes(bytes), "serial");
  crypto::OcspRequestPtr req(OCSP_REQUEST_new());
  OCSP_CERTID* id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(issuer),
                                     X509_get0_pubkey_bitstr(issuer), serial.get());
  if (id == nullptr || OCSP_request_add0_id(req.get(), id) == nullptr) {
    Die("OCSP request", crypto::OpenSslError("OCSP_cert_id_new"));
  }
  unsigned char* raw = nullptr;
  const int len = i2d_OCSP_REQUEST(req.get(), &raw);
  crypto::OpenSslBufferPtr owned(raw);
  return std::string(reinterpret_cast<char*>(raw), static_cast<size_t>(len));
}

struct Rate {
  double per_second = 0;
  double cpu_us = 0;  // CPU microseconds per response
};

// Calls HandleOcsp from `threads` threads for `seconds`: responses per second and CPU each.
Rate OcspRate(revocation::OcspResponder& responder, const std::vector<HttpRequest>& requests,
              int threads, double seconds) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> total{0};
  std::atomic<int64_t> failures{0};
  std::vector<std::thread> workers;
  const double cpu0 = CpuSeconds();
  const auto start = Steady::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      int64_t n = 0;
      size_t i = static_cast<size_t>(t) * 7919;
      while (!stop.load(std::memory_order_relaxed)) {
        auto r = responder.HandleOcsp(requests[i++ % requests.size()]);
        if (!r || r->status != 200 || r->body.size() < 100) failures.fetch_add(1);
        ++n;
      }
      total.fetch_add(n);
    });
  }
  std::this_thread::sleep_for(Seconds(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = Seconds(Steady::now() - start).count();
  if (failures.load() > 0) {
    std::fprintf(stderr, "revocation_bench: %lld OCSP failures\n",
                 static_cast<long long>(failures.load()));
    std::exit(1);
  }
  const double n = static_cast<double>(total.load());
  return {n / elapsed, (CpuSeconds() - cpu0) * 1e6 / n};
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--scope") {
      o.scope = std::stoll(next());
    } else if (a == "--crl") {
      o.crl = std::stoll(next());
    } else if (a == "--ocsp-seconds") {
      o.ocsp_seconds = std::stod(next());
    } else if (a == "--der-bytes") {
      o.der_bytes = std::stoul(next());
    } else if (a == "--chain-bytes") {
      o.chain_bytes = std::stoul(next());
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: revocation_bench [--scope N] [--crl N] [--ocsp-seconds S] "
                   "[--der-bytes B] [--chain-bytes B] [--keep]\n");
      return 2;
    }
  }
  if (o.crl < o.scope) o.crl = o.scope;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they happen
  SetLogLevel(LogLevel::kWarn);

  std::string dir = "/tmp/e2eid-revocation-bench-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  SystemClock clock;
  crypto::SecureRandom random;
  ca::InitOptions init;
  init.dir = dir + "/ca";
  init.domain = "example.com";
  auto made = Must(ca::InitCa(init, clock, random), "InitCa");
  auto ca = Must(ca::CertificateAuthority::Load(made.paths, std::nullopt), "loading the CA");
  const std::string issuer_id = Must(revocation::IssuerIdOf(ca), "issuer id");
  auto store = Must(store::OpenSqliteStore({.path = dir + "/e2eid.db"}), "opening the store");
  std::printf(
      "revocation_bench: store %s/e2eid.db (WAL, synchronous=FULL); rows carry %zu B DER "
      "+ %zu B chain\n",
      dir.c_str(), o.der_bytes, o.chain_bytes);

  // (a) one user with `scope` certificates, revoked in one call.
  auto t0 = Steady::now();
  InsertCertificates(*store, clock, random, o, "u-scope", o.scope, 100, false, issuer_id);
  std::printf("setup: inserted %lld certificates of one user in %.1f s\n",
              static_cast<long long>(o.scope), Seconds(Steady::now() - t0).count());
  revocation::RevocationService service(*store, clock);
  revocation::RevocationRequest req;
  req.kind = store::RevocationScopeKind::kUser;
  req.value = "u-scope";
  req.reason = 1;
  req.comment = "benchmark";
  req.actor = "cli";
  req.source = "cli";
  revocation::RevocationOutcome outcome;
  const Lap revoke = Measure([&] { outcome = Must(service.Revoke(req), "Revoke"); });
  std::printf(
      "(a) revoke user scope: %lld certificates (and 100 devices blocked): %.3f s "
      "(CPU %.3f s)\n",
      static_cast<long long>(outcome.affected), revoke.wall, revoke.cpu);

  // (b) a CRL with `crl` entries.
  t0 = Steady::now();
  InsertCertificates(*store, clock, random, o, "u-crl", o.crl - o.scope, 1, true, issuer_id);
  std::printf("setup: inserted %lld revoked certificates in %.1f s\n",
              static_cast<long long>(o.crl - o.scope), Seconds(Steady::now() - t0).count());
  std::vector<revocation::CrlEntry> entries;
  const Lap collect = Measure([&] {
    Must(store->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(e, revocation::CollectCrlEntries(tx, issuer_id, clock.Now()));
      entries = std::move(e);
      return Ok();
    }),
         "collecting CRL entries");
  });
  Bytes der;
  const Lap sign = Measure([&] {
    der =
        Must(revocation::SignCrl(ca, entries, 1, clock.Now(), clock.Now() + std::chrono::hours(1)),
             "SignCrl");
  });
  revocation::CrlPublisher publisher(ca, *store, clock);
  const Lap publish = Measure([&] { Must(publisher.Rebuild(), "CrlPublisher::Rebuild"); });
  std::printf(
      "(b) CRL with %zu entries: %zu bytes; read from the store %.2f s (CPU %.2f), sign+encode "
      "%.2f s (CPU %.2f); full publish (read, number, sign, PEM) %.2f s (CPU %.2f)\n",
      entries.size(), der.size(), collect.wall, collect.cpu, sign.wall, sign.cpu, publish.wall,
      publish.cpu);

  // (c) OCSP: half of the serials good, half revoked.
  std::vector<std::string> serials = InsertCertificates(*store, clock, random, o, "u-ocsp-good",
                                                        o.ocsp_certs / 2, 10, false, issuer_id);
  for (auto& s : InsertCertificates(*store, clock, random, o, "u-ocsp-revoked",
                                    o.ocsp_certs - o.ocsp_certs / 2, 10, true, issuer_id)) {
    serials.push_back(std::move(s));
  }
  std::vector<HttpRequest> requests;
  for (const auto& s : serials) {
    HttpRequest h;
    h.method = "POST";
    h.path = h.target = "/ocsp";
    h.body = OcspRequestFor(ca.intermediate(), s);
    requests.push_back(std::move(h));
  }
  StoreSerials registry(*store, clock);
  ca::Issuer issuer(ca, ca::ValidityPolicy{}, ca::IssuerUrls{}, registry, clock, random);
  revocation::OcspOptions uncached_options;
  uncached_options.max_cache_entries = 0;
  auto uncached =
      Must(revocation::OcspResponder::Create(ca, issuer, *store, clock, uncached_options),
           "OCSP responder");
  auto cached =
      Must(revocation::OcspResponder::Create(ca, issuer, *store, clock), "OCSP responder");
  for (const auto& r : requests) (void)cached->HandleOcsp(r);  // warm the cache
  const Rate u1 = OcspRate(*uncached, requests, 1, o.ocsp_seconds);
  const Rate u2 = OcspRate(*uncached, requests, 2, o.ocsp_seconds);
  const Rate c1 = OcspRate(*cached, requests, 1, o.ocsp_seconds);
  const Rate c2 = OcspRate(*cached, requests, 2, o.ocsp_seconds);
  std::printf(
      "(c) OCSP responses/s over %zu serials (half revoked), HandleOcsp called directly:\n"
      "    uncached (store lookup + ECDSA P-256 signature): 1 thread %.0f/s (CPU %.1f us each), "
      "2 threads %.0f/s (CPU %.1f us each)\n"
      "    cached (RFC 5019 style, per CertID):             1 thread %.0f/s (CPU %.1f us each), "
      "2 threads %.0f/s (CPU %.1f us each)\n",
      serials.size(), u1.per_second, u1.cpu_us, u2.per_second, u2.cpu_us, c1.per_second, c1.cpu_us,
      c2.per_second, c2.cpu_us);
  std::printf(
      "{\"scope\":%lld,\"revoke_s\":%.3f,\"revoke_cpu_s\":%.3f,\"crl_entries\":%zu,"
      "\"crl_bytes\":%zu,\"crl_collect_s\":%.3f,\"crl_collect_cpu_s\":%.3f,\"crl_sign_s\":%.3f,"
      "\"crl_sign_cpu_s\":%.3f,\"crl_publish_s\":%.3f,"
      "\"ocsp_uncached_1t\":%.0f,\"ocsp_uncached_2t\":%.0f,\"ocsp_cached_1t\":%.0f,"
      "\"ocsp_cached_2t\":%.0f}\n",
      static_cast<long long>(outcome.affected), revoke.wall, revoke.cpu, entries.size(), der.size(),
      collect.wall, collect.cpu, sign.wall, sign.cpu, publish.wall, u1.per_second, u2.per_second,
      c1.per_second, c2.per_second);

  uncached.reset();
  cached.reset();
  store.reset();
  if (!o.keep) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else {
    std::printf("kept %s\n", dir.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace e2eid::bench

int main(int argc, char** argv) {
  try {
    return e2eid::bench::Main(argc, argv);
  } catch (const std::exception& e) {  // std::stoll and friends on bad arguments
    std::fprintf(stderr, "revocation_bench: %s\n", e.what());
    return 2;
  }
}
