// The fuzz targets (see targets.h). Each runs one input through baton's real entry point and checks the promises
// that entry point makes of its result; a broken promise is reported in FuzzResult::violation.
#include "fuzz/targets.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/importer.h"
#include "baton/json_limits.h"
#include "baton/predictor.h"
#include "baton/store.h"
#include "gateway/config.h"
#include "gateway/request_parser.h"
#include "predict/model_io.h"

namespace baton::fuzz {
namespace {

namespace fs = std::filesystem;

FuzzResult Ok() { return {Status::Ok(), ""}; }
FuzzResult Fail(Status s) { return {std::move(s), ""}; }
FuzzResult Broken(Status s, std::string what) { return {std::move(s), std::move(what)}; }

// ---------------------------------------------------------------------------------------------------------------
// Scratch files for the importers (which read files by path).

std::string& ScratchSetting() {
  static std::string dir;
  return dir;
}

struct OwnedScratch {
  std::string dir;
  ~OwnedScratch() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

const std::string& ScratchDir() {
  if (!ScratchSetting().empty()) return ScratchSetting();
  static OwnedScratch owned;  // made once, removed at exit
  if (owned.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/baton-fuzz-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      std::perror("baton fuzz: mkdtemp");
      std::abort();
    }
    owned.dir = templ;
  }
  return owned.dir;
}

void WriteOrDie(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) {
    std::fprintf(stderr, "baton fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

// A fresh folder for one input (the previous input's files removed).
fs::path InputDir(const char* target) {
  const fs::path dir = fs::path(ScratchDir()) / target;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "baton fuzz: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    std::abort();
  }
  return dir;
}

// Splits `input` at the first line that is exactly `marker` (the marker line itself dropped).
std::pair<std::string_view, std::optional<std::string_view>> SplitAt(std::string_view input, std::string_view marker) {
  const std::string needle = "\n" + std::string(marker) + "\n";
  if (input.substr(0, needle.size() - 1) == needle.substr(1)) return {"", input.substr(needle.size() - 1)};
  const size_t at = input.find(needle);
  if (at == std::string_view::npos) return {input, std::nullopt};
  return {input.substr(0, at + 1), input.substr(at + needle.size())};
}

std::unique_ptr<Store> OpenMemoryStore() {
  auto store = Store::Open(":memory:");
  if (!store.ok()) {
    std::fprintf(stderr, "baton fuzz: cannot open an in-memory store: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  return std::move(*store);
}

int64_t Rows(Store& store, const char* table) {
  auto n = store.CountRows(table);
  return n.ok() ? *n : -1;
}

// The importers' promises: a failed import writes nothing (one transaction); a successful one stored exactly what
// its summary counts.
FuzzResult CheckImport(Store& store, const StatusOr<ImportSummary>& r) {
  const int64_t experts = Rows(store, "experts"), queries = Rows(store, "queries"), outcomes = Rows(store, "outcomes"),
                responses = Rows(store, "responses");
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kInternal) return Broken(r.status(), "an import failed with Internal");
    if (experts != 0 || queries != 0 || outcomes != 0 || responses != 0) {
      return Broken(r.status(), fmt::format("a failed import left rows behind (experts {}, queries {}, outcomes {}, "
                                            "responses {})",
                                            experts, queries, outcomes, responses));
    }
    return Fail(r.status());
  }
  const ImportSummary& s = *r;
  if (queries != static_cast<int64_t>(s.queries) || outcomes != static_cast<int64_t>(s.outcomes) ||
      responses != static_cast<int64_t>(s.responses) || experts != static_cast<int64_t>(s.experts)) {
    return Broken(Status::Ok(), fmt::format("the summary (experts {}, queries {}, outcomes {}, responses {}) does not "
                                            "match the store (experts {}, queries {}, outcomes {}, responses {})",
                                            s.experts, s.queries, s.outcomes, s.responses, experts, queries, outcomes,
                                            responses));
  }
  // Every stored score is in [0, 1] and every cost non-negative.
  std::string bad;
  Status st = store.ForEachOutcome([&](const OutcomeRecord& o) {
    if (!(o.score >= 0 && o.score <= 1)) bad = fmt::format("score {} stored", o.score);
    if (o.cost_usd && !(*o.cost_usd >= 0 && std::isfinite(*o.cost_usd))) bad = fmt::format("cost {} stored", *o.cost_usd);
  });
  if (!st.ok()) return Broken(st, "cannot read back the imported outcomes");
  if (!bad.empty()) return Broken(Status::Ok(), bad);
  return Ok();
}

// ---------------------------------------------------------------------------------------------------------------
// request_parser

FuzzResult FuzzRequestParser(std::string_view body) {
  auto r = gateway::ParseChatCompletionRequest(body);
  if (!r.ok()) {
    if (r.status().code() != StatusCode::kInvalidArgument) return Broken(r.status(), "an error other than InvalidArgument");
    (void)r.status().ToString();
    return Fail(r.status());
  }
  // Invariants of a successful parse: a model name and at least one message, each with a known role.
  if (r->model.empty()) return Broken(Status::Ok(), "accepted without a model");
  if (r->chat.messages.empty()) return Broken(Status::Ok(), "accepted without messages");
  for (const auto& m : r->chat.messages) {
    if (m.role.empty()) return Broken(Status::Ok(), "a message without a role");
  }
  if (r->chat.max_tokens && *r->chat.max_tokens <= 0) return Broken(Status::Ok(), "max_tokens <= 0 accepted");
  if (r->chat.temperature && !(*r->chat.temperature >= 0 && *r->chat.temperature <= 2)) {
    return Broken(Status::Ok(), "temperature outside [0, 2] accepted");
  }
  // The pass-through fields must survive what the gateway does with them: copying (recursive) and serialising
  // (recursive, as the openai backend does). The depth limit keeps both off the end of the stack.
  const nlohmann::json copy = r->chat.extra;
  (void)copy.dump();
  if (!CheckJsonDepth(body).ok()) return Broken(Status::Ok(), "a body over the depth limit was accepted");
  return Ok();
}

// ---------------------------------------------------------------------------------------------------------------
// config

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

FuzzResult FuzzConfig(std::string_view yaml) {
  // Both strictness levels: the tools that only call experts (the result reported), then `baton serve`'s.
  for (bool require_keys : {false, true}) {
    auto r = gateway::ParseGatewayConfig(yaml, "fuzz.yaml", "/base", {.require_keys = require_keys});
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kInvalidArgument) return Broken(r.status(), "an error other than InvalidArgument");
      if (r.status().message().rfind("fuzz.yaml", 0) != 0) return Broken(r.status(), "the error does not name the file");
      if (!require_keys) return Fail(r.status());
      if (r.status().message().find("keys") == std::string::npos) {
        return Broken(r.status(), "read without keys required but refused with them for another reason");
      }
      continue;
    }
    const gateway::GatewayConfig& c = *r;
    if (require_keys && c.keys.empty()) return Broken(Status::Ok(), "accepted without client keys");
    if (c.experts.empty()) return Broken(Status::Ok(), "accepted without experts");
    if (c.max_body_bytes <= 0 || c.io_threads < 1 || c.worker_threads < 1 || c.max_in_flight < 1 ||
        !(c.reserve_factor >= 1) || c.max_connections < 0) {
      return Broken(Status::Ok(), "a limit out of its range accepted");
    }
    if (!c.metrics_key_sha256.empty() && !IsLowerHex64(c.metrics_key_sha256)) {
      return Broken(Status::Ok(), "metrics key hash is not 64 lowercase hex digits");
    }
    if (!(c.router.lambda >= 0) || !std::isfinite(c.router.lambda)) return Broken(Status::Ok(), "bad lambda accepted");
    for (const auto& k : c.keys) {
      if (k.name.empty() || !IsLowerHex64(k.key_sha256)) return Broken(Status::Ok(), "a client key without name or hash");
      if (!(k.budget_usd >= 0) || !std::isfinite(k.budget_usd)) return Broken(Status::Ok(), "a bad budget accepted");
      if (!(k.rate_limit_rps >= 0) || !std::isfinite(k.rate_limit_rps) || k.max_concurrency < 0) {
        return Broken(Status::Ok(), "a bad key limit accepted");
      }
    }
    for (const auto& e : c.experts) {
      if (e.name.empty() || e.name == "baton") return Broken(Status::Ok(), "an expert without a usable name");
      if (e.max_response_bytes <= 0 || e.default_max_tokens <= 0 || e.max_retries < 0 || e.max_concurrency < 0) {
        return Broken(Status::Ok(), "an expert limit out of range accepted");
      }
    }
    for (const auto& a : c.architectures) {
      if (a.name.empty() || a.path.empty() || a.max_calls <= 0 || a.max_concurrency <= 0) {
        return Broken(Status::Ok(), "an architecture without name/file or with bad limits accepted");
      }
    }
  }
  return Ok();
}

// ---------------------------------------------------------------------------------------------------------------
// importers

constexpr std::string_view kModelsCsv =
    "model,params_b,usd_per_mtok_in,usd_per_mtok_out,price_source\n"
    "gpt-4,,30,60,list\n"
    "mistral-7b,7,,,\n"
    "claude-v2,,,,\n";
constexpr std::string_view kQueriesJsonl =
    "{\"id\":\"q1\",\"text\":\"What is 2+2?\",\"domain\":\"math\"}\n"
    "{\"id\":\"q2\",\"text\":\"Name a prime.\",\"domain\":\"math\",\"reference\":\"7\"}\n"
    "{\"id\":\"q3\",\"text\":\"Capital of France?\",\"domain\":\"geo\",\"source\":\"mmlu.geo\"}\n"
    "{\"id\":\"q4\",\"text\":\"Hi\"}\n";

FuzzResult RunImportDir(const fs::path& dir) {
  std::unique_ptr<Store> store = OpenMemoryStore();
  auto r = ImportDir(*store, dir.string(), {.dataset = "fuzz"});
  return CheckImport(*store, r);
}

FuzzResult FuzzImportCsv(std::string_view input) {
  const fs::path dir = InputDir("import_csv");
  auto [outcomes, models] = SplitAt(input, "%%models.csv");
  WriteOrDie(dir / "outcomes.csv", outcomes);
  WriteOrDie(dir / "models.csv", models ? *models : kModelsCsv);
  WriteOrDie(dir / "queries.jsonl", kQueriesJsonl);
  return RunImportDir(dir);
}

FuzzResult FuzzImportJsonl(std::string_view input) {
  const fs::path dir = InputDir("import_jsonl");
  auto [queries, responses] = SplitAt(input, "%%responses.jsonl");
  WriteOrDie(dir / "queries.jsonl", queries);
  if (responses) WriteOrDie(dir / "responses.jsonl", *responses);
  WriteOrDie(dir / "models.csv", kModelsCsv);
  WriteOrDie(dir / "outcomes.csv", "query_id,model,score,cost_usd,tokens_in,tokens_out\n");
  return RunImportDir(dir);
}

FuzzResult FuzzImportWide(std::string_view input) {
  const fs::path dir = InputDir("import_wide");
  WriteOrDie(dir / "wide.csv", input);
  std::unique_ptr<Store> store = OpenMemoryStore();
  auto r = ImportWide(*store, (dir / "wide.csv").string(),
                      {.query_col = "sample_id",
                       .text_col = "prompt",
                       .domain_col = "eval_name",
                       .dataset = "fuzz",
                       .ignore_cols = {"oracle"}});
  FuzzResult result = CheckImport(*store, r);
  if (result.violation.empty() && r.ok()) {
    // What was imported can be exported again (the inverse the header promises).
    auto out = ExportWide(*store, "fuzz");
    if (!out.ok()) return Broken(out.status(), "ExportWide failed on a dataset ImportWide accepted");
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// model files

uint64_t Fnv1a64(std::string_view s) {  // as model_io.cc frames its payload
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The input with a valid header and checksum: magic, this version, its bytes 20..size-8 as the payload.
std::string Reframe(std::string_view input) {
  constexpr size_t kHeader = 8 + 4 + 8;
  const std::string_view payload = input.size() >= kHeader + 8 ? input.substr(kHeader, input.size() - kHeader - 8) : "";
  std::string file = "BATONMDL";
  PutLe(&file, kModelFormatVersion, 4);
  PutLe(&file, payload.size(), 8);
  file += payload;
  PutLe(&file, Fnv1a64(payload), 8);
  return file;
}

FuzzResult CheckModel(const StatusOr<RouterModel>& r) {
  if (!r.ok()) {
    const StatusCode code = r.status().code();
    if (code != StatusCode::kDataLoss && code != StatusCode::kFailedPrecondition) {
      return Broken(r.status(), "a bad model file gave an error other than DataLoss / FailedPrecondition");
    }
    return Fail(r.status());
  }
  const RouterModel& m = *r;
  if (!m.predictor) return Broken(Status::Ok(), "a loaded model without a predictor");
  const size_t n = m.predictor->num_experts();
  if (m.cost.experts() != m.predictor->experts()) return Broken(Status::Ok(), "cost model and predictor disagree");
  if (!m.train_outcomes.empty() && m.train_outcomes.size() != n) return Broken(Status::Ok(), "training counts size");
  (void)m.ColdExperts();
  (void)m.predictor->Describe();
  // A loaded model is used at once by `baton serve` / `baton route`: predicting must be safe, and in [0, 1].
  std::vector<float> scores(n), costs(n);
  const QueryView queries[] = {{"What is the capital of France?", "geo", "mmlu.geo"},
                               {"", "", ""},
                               {"Write a haiku about routers, please, with exactly three lines.", "unseen-domain", "x"}};
  for (const QueryView& q : queries) {
    m.predictor->Predict(q, scores);
    m.cost.Predict(q, costs);
    for (float s : scores) {
      if (!(s >= 0 && s <= 1)) return Broken(Status::Ok(), fmt::format("a loaded model predicts score {}", s));
    }
  }
  return Ok();
}

FuzzResult FuzzModel(std::string_view input) {
  FuzzResult as_is = CheckModel(ParseModel(input, "fuzz.baton"));
  if (!as_is.violation.empty()) return as_is;
  FuzzResult reframed = CheckModel(ParseModel(Reframe(input), "fuzz.baton"));
  if (!reframed.violation.empty()) return reframed;
  return as_is;  // the status of the input as given
}

}  // namespace

const std::vector<Target>& Targets() {
  static const std::vector<Target> targets = {
      {"request_parser", &FuzzRequestParser}, {"config", &FuzzConfig},           {"import_csv", &FuzzImportCsv},
      {"import_jsonl", &FuzzImportJsonl},     {"import_wide", &FuzzImportWide}, {"model", &FuzzModel},
  };
  return targets;
}

TargetFn FindTarget(std::string_view name) {
  for (const Target& t : Targets()) {
    if (name == t.name) return t.fn;
  }
  return nullptr;
}

void SetScratchDir(const std::string& dir) { ScratchSetting() = dir; }

}  // namespace baton::fuzz
