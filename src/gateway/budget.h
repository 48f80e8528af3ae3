// Per-client-key budgets: reserve before an upstream call, settle after it.
//
// BudgetLedger is the interface the request path uses; LocalBudgetLedger keeps the accounts in this process (one
// gateway over its own store), SharedBudgetLedger (shared_budget.h) keeps them in the shared store, so that several
// replicas never together overspend a key.
//
// A call first reserves an upper estimate of its cost; the reservation succeeds only when spent + reserved + amount
// stays within the key's budget. After the call, Settle replaces the reservation with the real cost. The gateway makes
// each reservation bound its call (it sends upstream the max_tokens the reservation assumed, and experts clamp the
// usage an upstream reports to what the request allowed), so a call's cost fits its reservation. Should it not, the
// ledger still never lets spent pass the budget: a call is charged in full when that fits what the key has left (its
// own reservation included), otherwise up to the budget, and the part not charged is counted in overruns() and
// unbilled_usd(). So no sequence of calls, concurrent or not, ever spends more than the budget.
//
// LocalBudgetLedger's thread-safety: all methods are safe from many threads; one mutex (mu_) guards every account.
// Persisting is done by the `persist` callback, called under mu_ so that writes reach it in order (it must only
// enqueue, never block).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "baton/status.h"

namespace baton::gateway {

struct BudgetAccount {
  std::string key_hash;
  std::string name;
  double budget_usd = 0;
  double spent_usd = 0;
  double reserved_usd = 0;
};

// What a successful Reserve holds until its Settle.
struct Reservation {
  double amount_usd = 0;
  int64_t id = 0;  // the store's reservation row (SharedBudgetLedger); 0 for a LocalBudgetLedger
};

class BudgetLedger {
 public:
  virtual ~BudgetLedger() = default;
  // Reserves `amount_usd` (>= 0) on key `index`. ResourceExhausted when it does not fit what is left; Unavailable
  // when the ledger cannot tell (its database is down): the call must then be refused, never let through.
  virtual StatusOr<Reservation> Reserve(size_t index, double amount_usd) = 0;
  // Ends a reservation with the call's real cost `actual_usd` (0 for a failed call; negative and NaN count as 0).
  // Returns what was charged: actual_usd, or less when that would pass the budget (see above).
  virtual double Settle(size_t index, const Reservation& reservation, double actual_usd) = 0;
  // The account as this ledger last saw it.
  virtual BudgetAccount Get(size_t index) const = 0;
  virtual size_t size() const = 0;
  // Calls that cost more than the key had left, and the USD of theirs that was not charged.
  virtual int64_t overruns() const = 0;
  virtual double unbilled_usd() const = 0;
};

class LocalBudgetLedger final : public BudgetLedger {
 public:
  // Called with the account's new state after every change (under the ledger's lock).
  using PersistFn = std::function<void(const BudgetAccount&)>;

  explicit LocalBudgetLedger(std::vector<BudgetAccount> accounts, PersistFn persist = nullptr);

  StatusOr<Reservation> Reserve(size_t index, double amount_usd) override;
  double Settle(size_t index, const Reservation& reservation, double actual_usd) override;
  BudgetAccount Get(size_t index) const override;
  size_t size() const override { return accounts_.size(); }
  int64_t overruns() const override;
  double unbilled_usd() const override;

 private:
  mutable std::mutex mu_;
  std::vector<BudgetAccount> accounts_;  // guarded by mu_; the vector's size never changes
  PersistFn persist_;
  int64_t overruns_ = 0;     // guarded by mu_
  double unbilled_usd_ = 0;  // guarded by mu_
};

}  // namespace baton::gateway
