// SharedBudgetLedger: key budgets kept in a store that several `baton serve` replicas share (PostgreSQL; an SQLite
// file works for replicas on one machine), so that together they never overspend a key.
//
// Every Reserve and Settle is one atomic statement group in the database (Store::ReserveBudget / SettleBudget: the
// budget check is inside the conditional UPDATE, never a read-modify-write here), so replicas racing for the last
// dollars of a key are serialised by the database. A reservation carries this replica's id (`holder`) and an expiry:
// a background thread releases expired reservations (a replica that died mid-call), and at start-up a replica
// releases those its previous incarnation (same holder id) left behind.
//
// When the database cannot be reached, Reserve returns Unavailable (the request gets a 503: no free pass). A Settle
// that cannot reach it is kept and retried by the background thread until it lands (its reservation keeps the money
// held meanwhile); it returns the charge it will make, which is exact whenever the call cost no more than it
// reserved (the gateway's reservations bound their calls).
//
// Thread-safety: all methods are safe from many threads. Database calls use a pool of Store connections (one Store
// per call in progress, at most `max_connections`); the cached accounts (Get) are guarded by mu_.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "baton/store.h"
#include "gateway/budget.h"

namespace baton::gateway {

struct SharedBudgetOptions {
  std::string store_url;                         // where the budgets live (Store::Open's argument)
  std::string holder;                            // this replica's id, stable across its restarts
  int64_t reservation_ttl_ms = 300'000;          // a reservation not settled by then is released. Default: 5 min
  std::chrono::milliseconds sweep_every{1'000};  // expiry sweep, pending settlements, cache refresh. Default: 1 s
  size_t max_connections = 8;                    // pooled Store connections. Default: 8
};

class SharedBudgetLedger final : public BudgetLedger {
 public:
  // Opens the pool's first connection, releases the reservations `holder` left behind and reads the accounts
  // (which the caller has already upserted into the store). The accounts' order is the ledger's key index.
  static StatusOr<std::unique_ptr<SharedBudgetLedger>> Create(std::vector<BudgetAccount> accounts,
                                                              SharedBudgetOptions options);
  ~SharedBudgetLedger() override;  // stops the sweeper after one last attempt at pending settlements

  StatusOr<Reservation> Reserve(size_t index, double amount_usd) override;
  double Settle(size_t index, const Reservation& reservation, double actual_usd) override;
  BudgetAccount Get(size_t index) const override;
  size_t size() const override { return accounts_.size(); }
  int64_t overruns() const override;
  double unbilled_usd() const override;
  // Settlements waiting for the database, and reservations the sweeper released on expiry (all replicas' share it
  // saw). For metrics and tests.
  size_t pending_settlements() const;
  int64_t expired_released() const;

 private:
  struct PendingSettle {
    size_t index;
    Reservation reservation;
    double actual_usd;
  };
  SharedBudgetLedger(std::vector<BudgetAccount> accounts, SharedBudgetOptions options);
  StatusOr<std::unique_ptr<Store>> Acquire();
  void Release(std::unique_ptr<Store> store);
  // One attempt at a settlement in the database; the amount charged, or the database's error.
  StatusOr<double> TrySettle(const PendingSettle& p);
  void NoteCharge(double actual_usd, double charged);
  void Refresh(Store& store);  // re-reads every account into the cache
  void SweepLoop();

  const SharedBudgetOptions options_;
  mutable std::mutex mu_;
  std::vector<BudgetAccount> accounts_;       // cache, guarded by mu_; the vector's size never changes
  std::vector<std::unique_ptr<Store>> idle_;  // guarded by mu_
  std::vector<PendingSettle> pending_;        // guarded by mu_
  int64_t overruns_ = 0;                      // guarded by mu_
  double unbilled_usd_ = 0;                   // guarded by mu_
  int64_t expired_released_ = 0;              // guarded by mu_
  bool stop_ = false;                         // guarded by mu_
  std::condition_variable wake_;
  std::thread sweeper_;
};

}  // namespace baton::gateway
