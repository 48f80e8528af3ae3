// The Archon executor: runs an architecture's layers on an event loop, every call through CompleteAsync, each
// layer's calls concurrently (bounded), with call and cost caps, degradation and a trace of every call.
#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "archon/components.h"
#include "baton/archon.h"

namespace baton::archon {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Each earlier output embedded in a prompt is cut to this many bytes: kCandidateBytesPerToken x the largest
// max_tokens of the architecture. What makes ArchitectureBound a bound.
size_t ClipBytes(const Architecture& arch) {
  int64_t m = 1;
  for (const Layer& l : arch.layers)
    for (const Component& c : l.components) m = std::max(m, c.max_tokens);
  return static_cast<size_t>(m * kCandidateBytesPerToken);
}

double CallPriceBound(const ExpertLookup& experts, const Component& c, const ChatRequest& req) {
  if (!experts) return 0;
  std::optional<ExpertHandle> h = experts(c.model);
  if (!h || h->config == nullptr) return 0;
  const ExpertConfig& e = *h->config;
  if (!e.usd_per_mtok_in && !e.usd_per_mtok_out) return 0;
  const double in = static_cast<double>(PromptTokenBound(req));
  const double out = static_cast<double>(req.max_tokens.value_or(e.default_max_tokens));
  return (in * e.usd_per_mtok_in.value_or(0) + out * e.usd_per_mtok_out.value_or(0)) / 1e6;
}

// The next state from the previous one and the layer's outputs (see the semantics in baton/archon.h).
State Combine(const State& in, std::vector<StepOutput>& outs, int layer, int64_t* next_id) {
  State next;
  std::map<int64_t, std::string> critiques;
  std::optional<std::vector<std::string>> tests;
  for (StepOutput& o : outs) {
    if (o.candidates) {
      for (Candidate& c : *o.candidates) {
        if (c.id == 0) {  // produced by this layer
          c.id = (*next_id)++;
          c.generator_order = static_cast<int>(c.id);
          c.layer = layer;
        }
        next.candidates.push_back(std::move(c));
      }
    }
    for (auto& [id, text] : o.critiques) critiques[id] = std::move(text);
    if (o.unit_tests) tests = std::move(o.unit_tests);
  }
  if (next.candidates.empty()) next.candidates = in.candidates;  // nothing new (or every call failed): pass through
  for (Candidate& c : next.candidates) {
    auto it = critiques.find(c.id);
    if (it != critiques.end()) c.critique = it->second;
  }
  next.unit_tests = tests ? std::move(*tests) : in.unit_tests;
  return next;
}

// Runs layer `l` on `in` as if every call answered with blanks of the clip size (which no parser reads, so rankers
// and verifiers keep every candidate: the most later calls can see), adding each call's cost bound to *acc.
State SimulateLayer(const Architecture& arch, size_t l, const State& in, const ChatRequest& query, size_t clip,
                    const ExpertLookup& experts, ArchitectureCost* acc, int64_t* next_id) {
  const Layer& layer = arch.layers[l];
  std::vector<StepOutput> outs;
  bool critic = false, tests = false;
  const std::string blank(clip, ' ');
  for (const Component& c : layer.components) {
    std::unique_ptr<Step> step = MakeStep(c, StepInput{&in, &query, clip, nullptr});
    for (std::vector<CallSpec> calls = step->NextCalls(); !calls.empty(); calls = step->NextCalls()) {
      for (size_t i = 0; i < calls.size(); ++i) {
        acc->cost_usd += CallPriceBound(experts, c, calls[i].request);
        ++acc->calls;
        ChatResult r;
        r.content = blank;
        ParseOutcome p;
        step->OnResult(i, r, &p);
      }
    }
    outs.push_back(step->Finish());
    critic |= c.type == ComponentType::kCritic;
    tests |= c.type == ComponentType::kUnitTestGenerator;
  }
  State next = Combine(in, outs, static_cast<int>(l), next_id);
  if (critic)
    for (Candidate& c : next.candidates) c.critique = blank;
  if (tests) next.unit_tests.assign(kUnitTestsPerGenerator, std::string(clip / kUnitTestsPerGenerator, ' '));
  return next;
}

class Run : public std::enable_shared_from_this<Run> {
 public:
  Run(const Architecture& arch, ExpertLookup experts, ChatRequest request, const AsyncContext& ctx,
      ArchonRunOptions options, ArchonDoneHandler done)
      : arch_(arch),
        experts_(std::move(experts)),
        request_(std::move(request)),
        ctx_(ctx),
        opt_(std::move(options)),
        done_(std::move(done)),
        clip_(ClipBytes(arch_)),
        deadline_(Clock::now() + opt_.limits.timeout) {}

  void Start() {
    if (arch_.layers.empty())
      return Fail(Status::InvalidArgument(fmt::format("architecture '{}' has no layer", arch_.name)));
    if (opt_.limits.max_calls > 0) {
      const ArchitectureCost b = ArchitectureBound(arch_, experts_, request_);
      if (b.calls > opt_.limits.max_calls) {
        return Fail(Status::ResourceExhausted(
            fmt::format("architecture '{}' may make up to {} inference calls, over the cap of {}", arch_.name, b.calls,
                        opt_.limits.max_calls)));
      }
    }
    StartLayer(0);
  }

 private:
  struct Pending {
    size_t step;
    size_t index;
    CallSpec spec;
  };

  void StartLayer(size_t l) {
    if (l >= arch_.layers.size()) return Finish("");
    if (Clock::now() >= deadline_) return Finish(fmt::format("timeout before layer {}", l + 1));
    if (opt_.limits.max_cost_usd > 0) {
      ArchitectureCost b;
      int64_t id = next_id_;
      SimulateLayer(arch_, l, state_, request_, clip_, experts_, &b, &id);
      if (result_.cost_usd + b.cost_usd > opt_.limits.max_cost_usd) {
        return Finish(fmt::format("cost cap: layer {} may cost up to ${:.6f}, and ${:.6f} of ${:.6f} is spent", l + 1,
                                  b.cost_usd, result_.cost_usd, opt_.limits.max_cost_usd));
      }
    }
    layer_ = l;
    input_ = state_;
    const Layer& layer = arch_.layers[l];
    steps_.clear();
    outstanding_.assign(layer.components.size(), 0);
    steps_left_ = layer.components.size();
    const bool last = l + 1 == arch_.layers.size();
    stream_layer_ =
        last && opt_.final_sink && layer.components.size() == 1 &&
        (layer.components[0].type == ComponentType::kGenerator || layer.components[0].type == ComponentType::kFuser) &&
        layer.components[0].samples == 1;
    for (const Component& c : layer.components) {
      steps_.push_back(MakeStep(c, StepInput{&input_, &request_, clip_, &opt_.scorer}));
    }
    for (size_t s = 0; s < steps_.size(); ++s) Advance(s);
    Pump();
  }

  // Asks step `s` for its next stage; finishes the layer when every step is done.
  void Advance(size_t s) {
    std::vector<CallSpec> calls = steps_[s]->NextCalls();
    if (calls.empty()) {
      if (--steps_left_ == 0) FinishLayer();
      return;
    }
    outstanding_[s] = calls.size();
    for (size_t i = 0; i < calls.size(); ++i) queue_.push_back({s, i, std::move(calls[i])});
  }

  void Pump() {
    const int cap = std::max(1, opt_.limits.max_concurrency);
    while (!finished_ && in_flight_ < cap && !queue_.empty()) {
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      Launch(std::move(p));
    }
  }

  void Launch(Pending p) {
    ++in_flight_;
    const Component& c = arch_.layers[layer_].components[p.step];
    auto self = shared_from_this();
    const size_t layer = layer_;
    auto fail_later = [&](Status st) {
      boost::asio::post(*ctx_.loop, [self, p, layer, st = std::move(st), start = Clock::now()]() mutable {
        self->OnCallDone(layer, std::move(p), StatusOr<ChatResult>(std::move(st)), start);
      });
    };
    if (opt_.limits.max_calls > 0 && result_.calls >= opt_.limits.max_calls) {
      return fail_later(
          Status::ResourceExhausted(fmt::format("the run's cap of {} calls is reached", opt_.limits.max_calls)));
    }
    std::optional<ExpertHandle> h = experts_ ? experts_(c.model) : std::nullopt;
    if (!h || h->backend == nullptr) {
      return fail_later(Status::NotFound(fmt::format("model '{}' maps to no configured expert", c.model)));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    p.spec.request.timeout = std::max(std::chrono::milliseconds(1), left);
    StreamSink sink;
    if (stream_layer_) {
      sink = [self](const StreamDelta& d) {
        if (d.empty()) return true;
        self->result_.streamed = true;
        return self->opt_.final_sink(d);
      };
    }
    ChatRequest req = p.spec.request;
    ++result_.calls;  // sent to an expert
    h->backend->CompleteAsync(std::move(req), std::move(sink), ctx_,
                              [self, p = std::move(p), layer, start = Clock::now()](StatusOr<ChatResult> r) mutable {
                                self->OnCallDone(layer, std::move(p), std::move(r), start);
                              });
  }

  void OnCallDone(size_t layer, Pending p, StatusOr<ChatResult> r, Clock::time_point start) {
    --in_flight_;
    if (finished_ || layer != layer_) return;
    const Component& c = arch_.layers[layer_].components[p.step];
    ArchonCallRecord rec;
    rec.time_unix_ms = NowUnixMs();
    rec.run_id = opt_.run_id;
    rec.architecture = arch_.name;
    rec.layer = static_cast<int>(layer_);
    rec.component_index = static_cast<int>(p.step);
    rec.component = p.spec.stage;
    rec.expert = c.model;
    rec.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (r.ok()) {
      rec.prompt_tokens = r->usage.prompt_tokens;
      rec.completion_tokens = r->usage.completion_tokens;
      rec.cost_usd = r->cost_usd;
      result_.cost_usd += r->cost_usd;
      if (r->latency_ms > 0) rec.latency_ms = r->latency_ms;
    } else {
      rec.status = r.status().ToString();
      if (first_error_.ok()) first_error_ = r.status();
    }
    ParseOutcome parse;
    parse.text = "n/a";
    steps_[p.step]->OnResult(p.index, r, &parse);  // a failed call leaves the step's part of the state as it was
    if (!r.ok()) parse.text = "n/a";
    rec.parse = parse.text;
    if (opt_.on_call) opt_.on_call(rec);
    result_.trace.push_back(std::move(rec));
    if (stream_layer_ && !r.ok() && result_.streamed) {
      return Fail(Status::Unavailable(
          fmt::format("the final call failed after streaming part of its answer: {}", r.status().ToString())));
    }
    if (--outstanding_[p.step] == 0) Advance(p.step);
    Pump();
  }

  void FinishLayer() {
    std::vector<StepOutput> outs;
    const Layer& layer = arch_.layers[layer_];
    for (size_t s = 0; s < steps_.size(); ++s) {
      outs.push_back(steps_[s]->Finish());
      const Component& c = layer.components[s];
      if (!NeedsModel(c.type)) {
        ArchonCallRecord rec;
        rec.time_unix_ms = NowUnixMs();
        rec.run_id = opt_.run_id;
        rec.architecture = arch_.name;
        rec.layer = static_cast<int>(layer_);
        rec.component_index = static_cast<int>(s);
        rec.component = ComponentTypeName(c.type);
        rec.parse = outs.back().parse.text;
        if (opt_.on_call) opt_.on_call(rec);
        result_.trace.push_back(std::move(rec));
      } else if (outs.back().parse.text != "n/a") {
        // A component-level note (e.g. a verifier that kept every candidate) goes on its last call's record.
        for (auto it = result_.trace.rbegin(); it != result_.trace.rend(); ++it) {
          if (it->layer == static_cast<int>(layer_) && it->component_index == static_cast<int>(s)) {
            it->parse = outs.back().parse.text;
            break;
          }
        }
      }
    }
    state_ = Combine(input_, outs, static_cast<int>(layer_), &next_id_);
    steps_.clear();  // they point into input_
    const size_t next = layer_ + 1;
    // Start the next layer from the loop, not from inside a completion, so deep architectures do not recurse.
    boost::asio::post(*ctx_.loop, [self = shared_from_this(), next] { self->StartLayer(next); });
  }

  void Finish(std::string stop_reason) {
    if (finished_) return;
    if (state_.candidates.empty()) {
      Status st = first_error_.ok()
                      ? Status::Unavailable(fmt::format("architecture '{}' produced no candidate{}", arch_.name,
                                                        stop_reason.empty() ? "" : " (" + stop_reason + ")"))
                      : Status::Unavailable(fmt::format("architecture '{}' produced no candidate; first "
                                                        "call error: {}",
                                                        arch_.name, first_error_.ToString()));
      if (!stop_reason.empty() && stop_reason.rfind("cost cap", 0) == 0) {
        st = Status::ResourceExhausted(fmt::format("architecture '{}': {}", arch_.name, stop_reason));
      }
      return Fail(std::move(st));
    }
    finished_ = true;
    result_.stop_reason = std::move(stop_reason);
    result_.final_state = std::move(state_);
    result_.answer = result_.final_state.candidates.front().text;
    result_.answer_expert = result_.final_state.candidates.front().expert;
    ArchonDoneHandler done = std::move(done_);
    done(std::move(result_));
  }

  void Fail(Status st) {
    if (finished_) return;
    finished_ = true;
    ArchonDoneHandler done = std::move(done_);
    done(std::move(st));
  }

  const Architecture arch_;
  const ExpertLookup experts_;
  const ChatRequest request_;
  const AsyncContext ctx_;
  ArchonRunOptions opt_;
  ArchonDoneHandler done_;
  const size_t clip_;
  const Clock::time_point deadline_;

  State state_;  // what the last finished layer left
  State input_;  // the running layer's input (steps point into it)
  size_t layer_ = 0;
  int64_t next_id_ = 1;
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<size_t> outstanding_;
  size_t steps_left_ = 0;
  std::deque<Pending> queue_;
  int in_flight_ = 0;
  bool stream_layer_ = false;
  bool finished_ = false;
  Status first_error_ = Status::Ok();
  ArchonResult result_;
};

}  // namespace

ArchitectureCost ArchitectureBound(const Architecture& arch, const ExpertLookup& experts, const ChatRequest& request) {
  ArchitectureCost acc;
  State state;
  int64_t id = 1;
  const size_t clip = ClipBytes(arch);
  for (size_t l = 0; l < arch.layers.size(); ++l) {
    state = SimulateLayer(arch, l, state, request, clip, experts, &acc, &id);
  }
  return acc;
}

void RunArchitectureAsync(const Architecture& arch, ExpertLookup experts, ChatRequest request, const AsyncContext& ctx,
                          ArchonRunOptions options, ArchonDoneHandler done) {
  if (ctx.loop == nullptr) return;
  auto run =
      std::make_shared<Run>(arch, std::move(experts), std::move(request), ctx, std::move(options), std::move(done));
  boost::asio::post(*ctx.loop, [run] { run->Start(); });
}

StatusOr<ArchonResult> RunArchitecture(const Architecture& arch, ExpertLookup experts, ChatRequest request,
                                       ArchonRunOptions options, boost::asio::thread_pool* blocking) {
  boost::asio::io_context loop;
  std::optional<StatusOr<ArchonResult>> out;
  RunArchitectureAsync(arch, std::move(experts), std::move(request), AsyncContext{&loop, blocking}, std::move(options),
                       [&out](StatusOr<ArchonResult> r) { out = std::move(r); });
  loop.run();
  if (!out) return Status::Internal("the architecture run ended without a result");
  return std::move(*out);
}

}  // namespace baton::archon
