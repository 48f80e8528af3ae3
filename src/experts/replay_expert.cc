// The "replay" expert backend: answers a prompt with the answer one model gave it when a dataset was recorded.
#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "baton/importer.h"
#include "baton/store.h"
#include "experts/backends.h"

namespace baton::experts {
namespace {

struct RecordedAnswer {
  std::string text;
  double score = 0;
  std::optional<double> cost_usd;
  std::optional<int64_t> tokens_in;
  std::optional<int64_t> tokens_out;
  size_t prompt_chars = 0;
};

int64_t CharsToTokens(size_t chars) {
  return static_cast<int64_t>((chars + 3) / 4);
}

// Splits `s` into about `n` pieces without cutting a UTF-8 sequence.
std::vector<std::string_view> Chunks(std::string_view s, size_t n) {
  std::vector<std::string_view> out;
  const size_t step = std::max<size_t>(1, (s.size() + n - 1) / n);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = std::min(s.size(), pos + step);
    while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) ++end;
    out.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

// Immutable after construction, so safe to call from many threads at once without a lock.
class ReplayExpert : public ExpertBackend {
 public:
  ReplayExpert(ExpertConfig config, std::unordered_map<std::string, RecordedAnswer> answers)
      : config_(std::move(config)), answers_(std::move(answers)) {}

  const std::string& name() const override { return config_.name; }

  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    const std::string prompt = LastUserMessage(request);
    auto it = answers_.find(prompt);
    if (it == answers_.end()) {
      std::string head = prompt.substr(0, 60);
      while (!head.empty() && (static_cast<unsigned char>(head.back()) & 0xC0) == 0x80) head.pop_back();
      if (!head.empty() && static_cast<unsigned char>(head.back()) >= 0xC0) head.pop_back();
      return Status::NotFound(
          fmt::format("replay expert '{}' has no recorded answer for this prompt (first 60 chars: {})", name(), head));
    }
    const RecordedAnswer& a = it->second;
    ChatResult r;
    r.content = a.text;
    r.usage.prompt_tokens = a.tokens_in.value_or(CharsToTokens(a.prompt_chars));
    r.usage.completion_tokens = a.tokens_out.value_or(CharsToTokens(a.text.size()));
    r.cost_usd = a.cost_usd.value_or(CostFromPrices(config_, r.usage));
    r.recorded_score = a.score;
    if (sink != nullptr && *sink) {
      for (std::string_view piece : Chunks(a.text, 4)) {
        if (!(*sink)(piece))
          return Status::FailedPrecondition(fmt::format("expert '{}': cancelled by the sink", name()));
      }
    }
    return r;
  }

  // An in-memory lookup does not block: the whole call runs in one handler on the loop, not on the blocking pool.
  void CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx, CompletionHandler done) override {
    if (ctx.loop == nullptr) return;  // as ExpertBackend::CompleteAsync: nowhere to answer
    boost::asio::post(*ctx.loop, [this, request = std::move(request), sink = std::move(sink), done = std::move(done)] {
      done(Complete(request, sink ? &sink : nullptr));
    });
  }

 private:
  const ExpertConfig config_;
  const std::unordered_map<std::string, RecordedAnswer> answers_;  // prompt text -> answer
};

}  // namespace

StatusOr<std::unique_ptr<ExpertBackend>> MakeReplayExpert(const ExpertConfig& config) {
  const std::string model = config.replay_model.empty() ? config.name : config.replay_model;
  const std::string where = fmt::format("replay expert '{}'", config.name);
  std::unique_ptr<Store> store;
  std::string source;
  if (!config.replay_db.empty()) {
    source = config.replay_db;
    BATON_ASSIGN_OR_RETURN(store, Store::Open(config.replay_db, {.create = false, .read_only = true}));
  } else if (!config.replay_dir.empty()) {
    source = config.replay_dir;
    BATON_ASSIGN_OR_RETURN(store, Store::Open(":memory:"));
    StatusOr<ImportSummary> s = ImportDir(*store, config.replay_dir);
    if (!s.ok()) return s.status().WithContext(where);
  } else {
    return Status::InvalidArgument(where + " needs replay_dir (a dataset folder) or replay_db (a baton database)");
  }

  BATON_ASSIGN_OR_RETURN(std::optional<int64_t> expert_id, store->FindExpert(model));
  if (!expert_id) {
    BATON_ASSIGN_OR_RETURN(std::vector<ExpertRecord> experts, store->ListExperts());
    std::string names;
    for (size_t i = 0; i < experts.size() && i < 12; ++i) names += (i ? ", " : "") + experts[i].name;
    return Status::NotFound(
        fmt::format("{}: model '{}' is not recorded in {} (models: {})", where, model, source, names));
  }
  std::vector<std::string> datasets;
  if (!config.replay_dataset.empty()) datasets.push_back(config.replay_dataset);
  BATON_ASSIGN_OR_RETURN(std::vector<QueryRecord> queries, store->ListQueries(datasets));
  if (queries.empty()) {
    return Status::NotFound(fmt::format("{}: no queries of dataset '{}' in {}", where, config.replay_dataset, source));
  }

  std::unordered_map<int64_t, const QueryRecord*> by_id;
  for (const QueryRecord& q : queries) by_id.emplace(q.id, &q);
  std::unordered_map<int64_t, RecordedAnswer> by_query;
  BATON_RETURN_IF_ERROR(store->ForEachOutcome([&](const OutcomeRecord& o) {
    if (o.expert_id != *expert_id || o.source != OutcomeSource::kImported || !by_id.contains(o.query_id)) return;
    RecordedAnswer& a = by_query[o.query_id];
    a.score = o.score;
    a.cost_usd = o.cost_usd;
    a.tokens_in = o.tokens_in;
    a.tokens_out = o.tokens_out;
  }));

  // Queries in insertion order, so that among equal prompts the first recorded one answers.
  std::unordered_map<std::string, RecordedAnswer> answers;
  for (const QueryRecord& q : queries) {
    auto it = by_query.find(q.id);
    if (it == by_query.end() || answers.contains(q.text)) continue;
    StatusOr<std::string> text = store->GetResponse(q.id, *expert_id);
    if (!text.ok()) {
      if (text.status().code() == StatusCode::kNotFound) continue;
      return text.status().WithContext(where);
    }
    RecordedAnswer a = std::move(it->second);
    a.text = std::move(*text);
    a.prompt_chars = q.text.size();
    answers.emplace(q.text, std::move(a));
  }
  if (answers.empty()) {
    return Status::NotFound(fmt::format("{}: {} holds no recorded responses of model '{}'", where, source, model));
  }
  return std::unique_ptr<ExpertBackend>(std::make_unique<ReplayExpert>(config, std::move(answers)));
}

}  // namespace baton::experts
