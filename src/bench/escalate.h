// The escalation router inside RunBench (escalate.cc): chooses the cheap experts and fits the acceptance model on
// train, then sweeps threshold x lambda on test (see EscalationSummary in baton/bench.h).
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "baton/bench.h"

namespace baton {

struct EscalationRun {
  EscalationSummary summary;
  RouterResult router;  // "escalate": curve (sorted by cost); metrics are the caller's
  // The per-query answering expert at curve point i (recomputed).
  std::function<std::vector<int>(size_t)> choice_at;
};

// train_oof: the default router's out-of-fold predicted scores on train; train_pc its predicted costs on train;
// test_ps / test_pc on test. boot (optional): fed every curve point's realised values, in curve order. strong >= 0:
// strong_share of each point (two-expert runs). routed_first ("route-escalate"): the cheap call(s) are made only on
// queries where the default router's own choice at lambda is the first cheap expert; elsewhere the router's choice
// answers directly (at threshold 0 this is the default router itself); the cheap set is chosen on train the same way.
EscalationRun RunEscalation(const Dataset& train, const Dataset& test, const AnswerTable& train_answers,
                            const AnswerTable& test_answers, std::span<const float> train_oof,
                            std::span<const float> train_pc, std::span<const float> test_ps,
                            std::span<const float> test_pc, size_t num_lambdas, const CurveBootstrap* boot,
                            CurveBootstrap::Curve* boot_curve, int strong, bool routed_first = false);

}  // namespace baton
