// StoreSerialRegistry: the CA's SerialRegistry backed by the store, so a serial number is recorded
// (in its own committed transaction) before anything is signed with it and is never used twice,
// even across restarts and across several instances sharing one database.
#ifndef E2EID_ACME_SERIAL_REGISTRY_H_
#define E2EID_ACME_SERIAL_REGISTRY_H_

#include "ca/issuer.h"
#include "core/clock.h"
#include "store/store.h"

namespace e2eid::acme {

class StoreSerialRegistry final : public ca::SerialRegistry {
 public:
  // Both must outlive this object. Thread-safe.
  StoreSerialRegistry(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}
  StoreSerialRegistry(const StoreSerialRegistry&) = delete;
  StoreSerialRegistry& operator=(const StoreSerialRegistry&) = delete;

  Status Reserve(const std::string& serial_hex) override {
    const TimePoint now = clock_.Now();
    return store_.InTransaction(
        [&](store::Transaction& tx) { return tx.ReserveSerial(serial_hex, now); });
  }

 private:
  store::Store& store_;
  const Clock& clock_;
};

}  // namespace e2eid::acme

#endif  // E2EID_ACME_SERIAL_REGISTRY_H_
