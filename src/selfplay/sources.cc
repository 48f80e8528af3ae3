// Question sources and evaluators of the self-play loop.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/answer.h"
#include "baton/selfplay.h"

namespace baton {
namespace {

std::string Trim(std::string s) {
  auto sp = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!s.empty() && sp(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && sp(s[i])) ++i;
  return s.substr(i);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// 64-bit FNV-1a, for stable ids of generated questions.
uint64_t Fnv(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

}  // namespace

StatusOr<std::unique_ptr<PoolQuestionSource>> PoolQuestionSource::Open(const std::string& queries_jsonl, uint64_t seed,
                                                                       bool keep_unreferenced) {
  std::ifstream in(queries_jsonl);
  if (!in) return Status::NotFound(fmt::format("{}: cannot open the question pool", queries_jsonl));
  auto src = std::unique_ptr<PoolQuestionSource>(new PoolQuestionSource());
  src->path_ = queries_jsonl;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (Trim(line).empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j.contains("text")) {
      return Status::InvalidArgument(
          fmt::format("{}:{}: expected a JSON object with \"id\" and \"text\"", queries_jsonl, n));
    }
    SelfPlayQuestion q;
    q.external_id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    q.text = j["text"].is_string() ? j["text"].get<std::string>() : "";
    if (j.contains("domain") && j["domain"].is_string()) q.domain = j["domain"].get<std::string>();
    if (j.contains("reference") && j["reference"].is_string()) q.reference = j["reference"].get<std::string>();
    q.source = "pool";
    if (q.text.empty() || (q.reference.empty() && !keep_unreferenced)) continue;
    src->questions_.push_back(std::move(q));
  }
  if (src->questions_.empty()) {
    return Status::InvalidArgument(fmt::format(
        "{}: no usable question ({})", queries_jsonl,
        keep_unreferenced ? "no line has text" : "none has a reference; a judge can score questions without one"));
  }
  std::mt19937_64 rng(seed);
  auto& v = src->questions_;
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
  return src;
}

StatusOr<std::vector<SelfPlayQuestion>> PoolQuestionSource::Next(
    size_t n, const std::function<bool(const std::string&)>& already_stored, double* spent_usd) {
  (void)spent_usd;
  std::vector<SelfPlayQuestion> out;
  while (out.size() < n && next_ < questions_.size()) {
    const SelfPlayQuestion& q = questions_[next_++];
    if (!already_stored(q.external_id)) out.push_back(q);
  }
  return out;
}

GeneratedQuestionSource::GeneratedQuestionSource(ExpertBackend* writer, std::vector<std::string> domains,
                                                 std::chrono::milliseconds timeout, nlohmann::json extra)
    : writer_(writer), domains_(std::move(domains)), timeout_(timeout), extra_(std::move(extra)) {
  if (domains_.empty()) domains_.push_back("general knowledge");
}

std::string GeneratedQuestionSource::Prompt(const std::string& domain) {
  return fmt::format(
      "Write one hard exam question in the domain of {}: one that strong and weak models would answer differently. "
      "It must have a single short correct answer (a number, a letter of a listed option, or a few words).\n"
      "Reply in exactly this form and nothing else:\nQUESTION: <the question>\nANSWER: <the correct answer>",
      domain);
}

std::optional<std::pair<std::string, std::string>> GeneratedQuestionSource::ParseReply(const std::string& reply) {
  const std::string low = Lower(reply);
  const size_t a = low.rfind("answer:");
  if (a == std::string::npos) return std::nullopt;
  const size_t q = low.rfind("question:", a);
  if (q == std::string::npos) return std::nullopt;
  std::string question = Trim(reply.substr(q + 9, a - q - 9));
  std::string answer = Trim(reply.substr(a + 7));
  if (const size_t nl = answer.find('\n'); nl != std::string::npos) answer = Trim(answer.substr(0, nl));
  if (question.size() < 8 || answer.empty()) return std::nullopt;
  return std::make_pair(question, answer);
}

StatusOr<std::vector<SelfPlayQuestion>> GeneratedQuestionSource::Next(
    size_t n, const std::function<bool(const std::string&)>& already_stored, double* spent_usd) {
  std::vector<SelfPlayQuestion> out;
  // At most 2n attempts: a writer that never follows the format must not stall the loop.
  for (size_t attempt = 0; attempt < 2 * n && out.size() < n; ++attempt) {
    const std::string& domain = domains_[calls_++ % domains_.size()];
    ChatRequest req;
    req.messages = {{.role = "user", .content = Prompt(domain)}};
    req.timeout = timeout_;
    req.temperature = 1.0;
    req.extra = extra_;
    StatusOr<ChatResult> r = writer_->Complete(req);
    if (!r.ok()) continue;
    if (spent_usd) *spent_usd += r->cost_usd;
    auto parsed = ParseReply(r->content);
    if (!parsed) continue;
    SelfPlayQuestion q;
    q.text = parsed->first;
    q.reference = parsed->second;
    q.domain = domain;
    q.source = name();
    q.external_id = fmt::format("gen-{:016x}", Fnv(domain + "\n" + q.text));
    if (already_stored(q.external_id)) continue;
    out.push_back(std::move(q));
  }
  return out;
}

std::optional<double> ReferenceEvaluator::Score(const SelfPlayQuestion& q, const ChatResult& answer,
                                                double* spent_usd) {
  (void)spent_usd;
  if (Trim(q.reference).empty()) return std::nullopt;
  return ScoreAgainstReference(answer.content, q.reference);
}

std::optional<double> RecordedEvaluator::Score(const SelfPlayQuestion& q, const ChatResult& answer, double* spent_usd) {
  (void)q, (void)spent_usd;
  return answer.recorded_score;
}

std::string JudgeEvaluator::Prompt(const SelfPlayQuestion& q, const std::string& answer) {
  std::string p = "You are grading an answer to a question. Decide whether the answer's final answer is correct.\n\n";
  p += "QUESTION:\n" + q.text + "\n\n";
  if (!Trim(q.reference).empty()) p += "REFERENCE ANSWER:\n" + q.reference + "\n\n";
  p += "ANSWER TO GRADE:\n" + answer + "\n\n";
  p += "Reply with one line: VERDICT: CORRECT or VERDICT: INCORRECT";
  return p;
}

std::optional<double> JudgeEvaluator::ParseVerdict(const std::string& reply) {
  const std::string low = Lower(reply);
  const size_t v = low.rfind("verdict:");
  if (v == std::string::npos) return std::nullopt;
  std::string rest = Trim(low.substr(v + 8));
  while (!rest.empty() && (rest[0] == '*' || rest[0] == '"' || rest[0] == '\'')) rest.erase(0, 1);
  if (rest.rfind("incorrect", 0) == 0) return 0.0;
  if (rest.rfind("correct", 0) == 0) return 1.0;
  return std::nullopt;
}

std::optional<double> JudgeEvaluator::Score(const SelfPlayQuestion& q, const ChatResult& answer, double* spent_usd) {
  ChatRequest req;
  req.messages = {{.role = "user", .content = Prompt(q, answer.content)}};
  req.timeout = timeout_;
  req.temperature = 0.0;
  req.extra = extra_;
  StatusOr<ChatResult> r = judge_->Complete(req);
  if (!r.ok()) return std::nullopt;
  if (spent_usd) *spent_usd += r->cost_usd;
  return ParseVerdict(r->content);
}

}  // namespace baton
