#include "gateway/shared_budget.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace baton::gateway {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

SharedBudgetLedger::SharedBudgetLedger(std::vector<BudgetAccount> accounts, SharedBudgetOptions options)
    : options_(std::move(options)), accounts_(std::move(accounts)) {}

StatusOr<std::unique_ptr<SharedBudgetLedger>> SharedBudgetLedger::Create(std::vector<BudgetAccount> accounts,
                                                                         SharedBudgetOptions options) {
  if (options.holder.empty()) return Status::InvalidArgument("a shared budget ledger needs a holder (replica) id");
  std::unique_ptr<SharedBudgetLedger> l(new SharedBudgetLedger(std::move(accounts), std::move(options)));
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, l->Acquire());
  // What this replica's previous incarnation held when it died is not in flight any more.
  BATON_ASSIGN_OR_RETURN(int64_t released, store->ReleaseReservationsOf(l->options_.holder));
  if (released > 0) {
    std::fprintf(stderr, "baton serve: released %lld budget reservation(s) left by replica '%s' before a restart\n",
                 static_cast<long long>(released), l->options_.holder.c_str());
  }
  l->Refresh(*store);
  l->Release(std::move(store));
  l->sweeper_ = std::thread([p = l.get()] { p->SweepLoop(); });
  return l;
}

SharedBudgetLedger::~SharedBudgetLedger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

StatusOr<std::unique_ptr<Store>> SharedBudgetLedger::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Store> s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
  }
  // A request waits on this: a database that does not answer soon gets the request a 503, not a long stall.
  StatusOr<std::unique_ptr<Store>> s = Store::Open(
      options_.store_url,
      StoreOptions{
          .create = false, .retry_initial_ms = 20, .retry_max_ms = 100, .retry_total_ms = 300, .connect_timeout_s = 2});
  if (!s.ok()) return Status::Unavailable("cannot open the budget store: " + s.status().message());
  return s;
}

void SharedBudgetLedger::Release(std::unique_ptr<Store> store) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < options_.max_connections) idle_.push_back(std::move(store));
}

StatusOr<Reservation> SharedBudgetLedger::Reserve(size_t index, double amount_usd) {
  if (index >= accounts_.size()) return Status::Internal("unknown budget account");
  amount_usd = std::isfinite(amount_usd) ? std::max(0.0, amount_usd) : 0.0;
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Acquire());
  StatusOr<int64_t> id =
      store->ReserveBudget(accounts_[index].key_hash, amount_usd, options_.reservation_ttl_ms, options_.holder);
  if (!id.ok()) {
    const StatusCode code = id.status().code();
    if (code == StatusCode::kResourceExhausted) {
      Release(std::move(store));
      return Status::ResourceExhausted(
          fmt::format("budget exhausted for key '{}': {}", accounts_[index].name, id.status().message()));
    }
    // Anything else means the database could not decide; a connection that failed is not pooled again.
    return Status::Unavailable(fmt::format("budget store: {}", id.status().message()));
  }
  Release(std::move(store));
  {
    std::lock_guard<std::mutex> lock(mu_);
    accounts_[index].reserved_usd += amount_usd;  // the cache's view until the next refresh
  }
  return Reservation{.amount_usd = amount_usd, .id = *id};
}

StatusOr<double> SharedBudgetLedger::TrySettle(const PendingSettle& p) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Acquire());
  StatusOr<double> charged = store->SettleBudget(p.reservation.id, accounts_[p.index].key_hash, p.actual_usd);
  if (charged.ok()) Release(std::move(store));
  return charged;
}

void SharedBudgetLedger::NoteCharge(double actual_usd, double charged) {
  std::lock_guard<std::mutex> lock(mu_);
  if (actual_usd - charged > 1e-12 * std::max(1.0, actual_usd)) {
    ++overruns_;
    unbilled_usd_ += actual_usd - charged;
  }
}

double SharedBudgetLedger::Settle(size_t index, const Reservation& reservation, double actual_usd) {
  if (index >= accounts_.size()) return 0;
  if (!(actual_usd > 0) || !std::isfinite(actual_usd)) actual_usd = 0;  // negative, NaN or infinite: nothing
  const PendingSettle p{index, reservation, actual_usd};
  StatusOr<double> charged = TrySettle(p);
  if (charged.ok()) {
    NoteCharge(actual_usd, *charged);
    std::lock_guard<std::mutex> lock(mu_);
    BudgetAccount& a = accounts_[index];
    a.reserved_usd = std::max(0.0, a.reserved_usd - reservation.amount_usd);
    a.spent_usd += *charged;
    return *charged;
  }
  std::fprintf(stderr, "baton serve: settling a budget reservation failed (%s); it will be retried\n",
               charged.status().ToString().c_str());
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(p);
  }
  wake_.notify_all();
  // The reservation still holds the money, so the call is charged in full when it fits what it reserved.
  return std::min(actual_usd, reservation.amount_usd);
}

void SharedBudgetLedger::Refresh(Store& store) {
  std::vector<BudgetAccount> fresh;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fresh = accounts_;
  }
  for (BudgetAccount& a : fresh) {
    StatusOr<std::optional<ClientBudgetRecord>> row = store.GetClientBudget(a.key_hash);
    if (!row.ok() || !row->has_value()) continue;
    a.spent_usd = (*row)->spent_usd;
    a.reserved_usd = (*row)->reserved_usd;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < fresh.size(); ++i) {
    accounts_[i].spent_usd = fresh[i].spent_usd;
    accounts_[i].reserved_usd = fresh[i].reserved_usd;
  }
}

void SharedBudgetLedger::SweepLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait_for(lock, options_.sweep_every);
    const bool stopping = stop_;
    std::vector<PendingSettle> todo;
    todo.swap(pending_);
    lock.unlock();
    std::vector<PendingSettle> failed;
    for (const PendingSettle& p : todo) {
      StatusOr<double> charged = TrySettle(p);
      if (charged.ok()) {
        NoteCharge(p.actual_usd, *charged);
      } else {
        failed.push_back(p);
      }
    }
    int64_t released = 0;
    if (StatusOr<std::unique_ptr<Store>> store = Acquire(); store.ok()) {
      StatusOr<int64_t> n = (*store)->ReleaseExpiredReservations(NowMs());
      if (n.ok()) {
        released = *n;
        Refresh(**store);
        Release(std::move(*store));
      }
    }
    lock.lock();
    expired_released_ += released;
    pending_.insert(pending_.begin(), failed.begin(), failed.end());
    if (stopping) {
      if (!pending_.empty()) {
        std::fprintf(stderr,
                     "baton serve: %zu budget settlement(s) could not reach the store before shutdown; their "
                     "reservations are released when they expire\n",
                     pending_.size());
      }
      return;
    }
  }
}

BudgetAccount SharedBudgetLedger::Get(size_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index < accounts_.size() ? accounts_[index] : BudgetAccount{};
}

int64_t SharedBudgetLedger::overruns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overruns_;
}

double SharedBudgetLedger::unbilled_usd() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unbilled_usd_;
}

size_t SharedBudgetLedger::pending_settlements() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

int64_t SharedBudgetLedger::expired_released() const {
  std::lock_guard<std::mutex> lock(mu_);
  return expired_released_;
}

}  // namespace baton::gateway
