#include "baton/dataset.h"

#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

namespace baton {

Dataset::Dataset(std::vector<ExpertRecord> experts, std::vector<QueryRecord> queries)
    : experts_(std::move(experts)), queries_(std::move(queries)) {
  const size_t cells = experts_.size() * queries_.size();
  score_.assign(cells, NAN);
  cost_.assign(cells, NAN);
  tokens_in_.assign(cells, NAN);
  tokens_out_.assign(cells, NAN);
  IndexDomains();
}

void Dataset::IndexDomains() {
  domains_.clear();
  domain_of_.clear();
  domain_of_.reserve(queries_.size());
  std::unordered_map<std::string, uint32_t> ids;
  for (const QueryRecord& q : queries_) {
    auto [it, added] = ids.emplace(q.domain, static_cast<uint32_t>(domains_.size()));
    if (added) domains_.push_back(q.domain);
    domain_of_.push_back(it->second);
  }
}

void Dataset::Set(size_t q, size_t e, float score, float cost, float tokens_in, float tokens_out) {
  const size_t i = q * experts_.size() + e;
  score_[i] = score;
  cost_[i] = cost;
  tokens_in_[i] = tokens_in;
  tokens_out_[i] = tokens_out;
}

StatusOr<size_t> Dataset::ExpertIndex(const std::string& name) const {
  for (size_t e = 0; e < experts_.size(); ++e) {
    if (experts_[e].name == name) return e;
  }
  std::string known;
  for (const auto& x : experts_) known += (known.empty() ? "" : ", ") + x.name;
  return Status::NotFound(fmt::format("unknown expert '{}' (known: {})", name, known));
}

Dataset Dataset::SelectQueries(const std::vector<size_t>& rows) const {
  std::vector<QueryRecord> qs;
  qs.reserve(rows.size());
  for (size_t r : rows) qs.push_back(queries_[r]);
  Dataset out(experts_, std::move(qs));
  const size_t n = experts_.size();
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t src = rows[i] * n, dst = i * n;
    std::copy_n(score_.begin() + src, n, out.score_.begin() + dst);
    std::copy_n(cost_.begin() + src, n, out.cost_.begin() + dst);
    std::copy_n(tokens_in_.begin() + src, n, out.tokens_in_.begin() + dst);
    std::copy_n(tokens_out_.begin() + src, n, out.tokens_out_.begin() + dst);
  }
  return out;
}

StatusOr<Dataset> Dataset::SelectExperts(const std::vector<std::string>& names) const {
  if (names.empty()) return Status::InvalidArgument("the expert list is empty");
  std::vector<size_t> cols;
  std::unordered_set<std::string> seen;
  std::vector<ExpertRecord> es;
  for (const std::string& name : names) {
    if (!seen.insert(name).second) return Status::InvalidArgument(fmt::format("expert '{}' is listed twice", name));
    BATON_ASSIGN_OR_RETURN(size_t e, ExpertIndex(name));
    cols.push_back(e);
    es.push_back(experts_[e]);
  }
  Dataset out(std::move(es), queries_);
  for (size_t q = 0; q < queries_.size(); ++q) {
    for (size_t j = 0; j < cols.size(); ++j) {
      const size_t src = q * experts_.size() + cols[j];
      out.Set(q, j, score_[src], cost_[src], tokens_in_[src], tokens_out_[src]);
    }
  }
  return out;
}

double Dataset::MeanScore(size_t e) const {
  double sum = 0;
  size_t n = 0;
  for (size_t q = 0; q < queries_.size(); ++q) {
    const float s = score(q, e);
    if (!std::isnan(s)) sum += s, ++n;
  }
  return n ? sum / static_cast<double>(n) : NAN;
}

double Dataset::MeanCost(size_t e) const {
  double sum = 0;
  size_t n = 0;
  for (size_t q = 0; q < queries_.size(); ++q) {
    const float c = cost(q, e);
    if (!std::isnan(c)) sum += c, ++n;
  }
  return n ? sum / static_cast<double>(n) : NAN;
}

size_t Dataset::ObservedCount(size_t e) const {
  size_t n = 0;
  for (size_t q = 0; q < queries_.size(); ++q) n += observed(q, e);
  return n;
}

}  // namespace baton
