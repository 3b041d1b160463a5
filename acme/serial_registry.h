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
  // How a reservation is committed. kRelaxedUntilStored (Store::InTransactionRelaxed) is for an
  // issuer whose certificates are stored with a durable commit before they leave the server (the
  // ACME engine): that commit makes the reservation durable too, and a power loss before it loses
  // the reservation together with a certificate nobody received. A certificate that is never
  // stored (the OCSP responder's, the server's TLS certificate) then relies on its 128 random bits
  // alone after a power loss. kDurable commits every reservation with a flush.
  enum class Durability { kDurable, kRelaxedUntilStored };

  // Both must outlive this object. Thread-safe.
  StoreSerialRegistry(store::Store& store, const Clock& clock,
                      Durability durability = Durability::kDurable)
      : store_(store), clock_(clock), durability_(durability) {}
  StoreSerialRegistry(const StoreSerialRegistry&) = delete;
  StoreSerialRegistry& operator=(const StoreSerialRegistry&) = delete;

  Status Reserve(const std::string& serial_hex) override {
    const TimePoint now = clock_.Now();
    auto reserve = [&](store::Transaction& tx) { return tx.ReserveSerial(serial_hex, now); };
    return durability_ == Durability::kDurable ? store_.InTransaction(reserve)
                                               : store_.InTransactionRelaxed(reserve);
  }

 private:
  store::Store& store_;
  const Clock& clock_;
  const Durability durability_;
};

}  // namespace e2eid::acme

#endif  // E2EID_ACME_SERIAL_REGISTRY_H_
