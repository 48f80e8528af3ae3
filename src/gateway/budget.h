// Per-client-key budgets: reserve before an upstream call, settle after it.
//
// A call first reserves an upper estimate of its cost; the reservation succeeds only when spent + reserved + amount
// stays within the key's budget. After the call, Settle replaces the reservation with the real cost. So concurrent
// calls can never together commit more than the budget, provided each reservation bounds its call's real cost (a call
// that costs more than it reserved is still charged in full and counted in overruns()).
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
  // Ends a reservation of `reserved_usd` with the call's real cost `actual_usd` (0 for a failed call).
  void Settle(size_t index, double reserved_usd, double actual_usd);

  BudgetAccount Get(size_t index) const;
  size_t size() const { return accounts_.size(); }
  int64_t overruns() const;

 private:
  mutable std::mutex mu_;
  std::vector<BudgetAccount> accounts_;  // guarded by mu_; the vector's size never changes
  PersistFn persist_;
  int64_t overruns_ = 0;  // guarded by mu_
};

}  // namespace baton::gateway
