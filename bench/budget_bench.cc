// Reserve+settle round trips per second against one client key, with N threads each on its own Store (like N
// gateway replicas sharing one database). Prints one line per run.
//
//   build/bench/budget_bench DB THREADS SECONDS
//   e.g. build/bench/budget_bench build/scratch/b.db 8 5
//        build/bench/budget_bench postgresql://postgres@127.0.0.1:PORT/baton 8 5
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "baton/store.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DB THREADS SECONDS\n", argv[0]);
    return 2;
  }
  const std::string db = argv[1];
  const int threads = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  if (threads < 1 || !(seconds > 0)) {
    std::fprintf(stderr, "THREADS must be >= 1 and SECONDS > 0\n");
    return 2;
  }
  {
    auto store = baton::Store::Open(db);
    if (!store.ok()) {
      std::fprintf(stderr, "budget_bench: %s\n", store.status().ToString().c_str());
      return 1;
    }
    // A budget no run exhausts: every reservation fits, so the figure is the round trip, not the refusals.
    if (auto st = (*store)->UpsertClientBudget({.key_hash = "bench", .name = "bench", .budget_usd = 1e12}); !st.ok()) {
      std::fprintf(stderr, "budget_bench: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  std::atomic<int64_t> done{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto store = baton::Store::Open(db);
      if (!store.ok()) {
        ++failed;
        return;
      }
      while (!stop.load()) {
        auto id = (*store)->ReserveBudget("bench", 0.01, 60000, "bench-" + std::to_string(t));
        if (!id.ok() || !(*store)->SettleBudget(*id, "bench", 0.005).ok()) {
          ++failed;
          continue;
        }
        ++done;
      }
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s threads=%d: %.0f reserve+settle/s (%lld in %.1f s, %lld failed)\n",
              baton::DatabaseDisplayName(db).c_str(), threads, done.load() / elapsed,
              static_cast<long long>(done.load()), elapsed, static_cast<long long>(failed.load()));
  return failed.load() == 0 ? 0 : 1;
}
