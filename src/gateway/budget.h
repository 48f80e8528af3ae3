// Per-client-key budgets: reserve before an upstream call, settle after it.
//
// A call first reserves an upper estimate of its cost; the reservation succeeds only when spent + reserved + amount
// stays within the key's budget. After the call, Settle replaces the reservation with the real cost. The gateway makes
// each reservation bound its call (it sends upstream the max_tokens the reservation assumed, and experts clamp the
// usage an upstream reports to what the request allowed), so a call's cost fits its reservation. Should it not, the
// ledger still never lets spent pass the budget: a call is charged in full when that fits what the key has left (its
// own reservation included), otherwise up to the budget, and the part not charged is counted in overruns() and
// unbilled_usd(). So no sequence of calls, concurrent or not, ever spends more than the budget.
//
// Thread-safety: all methods are safe from many threads; one mutex (mu_) guards every account. Persisting is done
// by the `persist` callback, called under mu_ so that writes reach it in order (it must only enqueue, never block).
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

class BudgetLedger {
 public:
  // Called with the account's new state after every change (under the ledger's lock).
  using PersistFn = std::function<void(const BudgetAccount&)>;

  explicit BudgetLedger(std::vector<BudgetAccount> accounts, PersistFn persist = nullptr);

  // Reserves `amount_usd` (>= 0) on key `index`. ResourceExhausted when it does not fit what is left.
  Status Reserve(size_t index, double amount_usd);
  // Ends a reservation of `reserved_usd` with the call's real cost `actual_usd` (0 for a failed call; negative and
  // NaN count as 0). Returns what was charged: actual_usd, or less when that would pass the budget (see above).
  double Settle(size_t index, double reserved_usd, double actual_usd);

  BudgetAccount Get(size_t index) const;
  size_t size() const { return accounts_.size(); }
  // Calls that cost more than the key had left, and the USD of theirs that was not charged.
  int64_t overruns() const;
  double unbilled_usd() const;

 private:
  mutable std::mutex mu_;
  std::vector<BudgetAccount> accounts_;  // guarded by mu_; the vector's size never changes
  PersistFn persist_;
  int64_t overruns_ = 0;     // guarded by mu_
  double unbilled_usd_ = 0;  // guarded by mu_
};

}  // namespace baton::gateway
