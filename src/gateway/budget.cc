#include "gateway/budget.h"

#include <algorithm>

#include <fmt/format.h>

namespace baton::gateway {

LocalBudgetLedger::LocalBudgetLedger(std::vector<BudgetAccount> accounts, PersistFn persist)
    : accounts_(std::move(accounts)), persist_(std::move(persist)) {}

StatusOr<Reservation> LocalBudgetLedger::Reserve(size_t index, double amount_usd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= accounts_.size()) return Status::Internal("unknown budget account");
  BudgetAccount& a = accounts_[index];
  amount_usd = std::max(0.0, amount_usd);
  if (a.spent_usd + a.reserved_usd + amount_usd > a.budget_usd * (1 + 1e-12)) {
    return Status::ResourceExhausted(fmt::format(
        "budget exhausted for key '{}': spent ${:.6f} of ${:.6f} (${:.6f} reserved by calls in flight), this call "
        "needs up to ${:.6f}",
        a.name, a.spent_usd, a.budget_usd, a.reserved_usd, amount_usd));
  }
  a.reserved_usd += amount_usd;
  if (persist_) persist_(a);
  return Reservation{.amount_usd = amount_usd};
}

double LocalBudgetLedger::Settle(size_t index, const Reservation& reservation, double actual_usd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= accounts_.size()) return 0;
  BudgetAccount& a = accounts_[index];
  a.reserved_usd = std::max(0.0, a.reserved_usd - std::max(0.0, reservation.amount_usd));
  if (!(actual_usd > 0)) actual_usd = 0;  // negative or NaN: nothing to charge
  // What the key has left once this call's reservation is released: the other calls' reservations stay untouched.
  const double room = std::max(0.0, a.budget_usd - a.spent_usd - a.reserved_usd);
  const double charged = std::min(actual_usd, room);
  // Rounding (a call charged exactly what it reserved can find room a few ulps short) is not an overrun.
  if (actual_usd - charged > a.budget_usd * 1e-12) {
    ++overruns_;
    unbilled_usd_ += actual_usd - charged;
  }
  a.spent_usd += charged;
  if (persist_) persist_(a);
  return charged;
}

BudgetAccount LocalBudgetLedger::Get(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index < accounts_.size() ? accounts_[index] : BudgetAccount{};
}

int64_t LocalBudgetLedger::overruns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overruns_;
}

double LocalBudgetLedger::unbilled_usd() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unbilled_usd_;
}

}  // namespace baton::gateway
