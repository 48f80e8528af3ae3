#include "baton/responses.h"

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace baton {

Status ForEachRecordedResponse(
    const std::string& path,
    const std::function<void(const std::string& query_id, const std::string& model, const std::string& response)>& fn) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("{}: cannot open", path));
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      return Status::DataLoss(fmt::format("{}:{}: not valid JSON: {}", path, lineno, e.what()));
    }
    if (!j.is_object() || !j.contains("query_id") || !j.contains("model") || !j.contains("response") ||
        !j["query_id"].is_string() || !j["model"].is_string() || !j["response"].is_string()) {
      return Status::DataLoss(fmt::format("{}:{}: needs string query_id, model and response", path, lineno));
    }
    fn(j["query_id"].get_ref<const std::string&>(), j["model"].get_ref<const std::string&>(),
       j["response"].get_ref<const std::string&>());
  }
  return Status::Ok();
}

}  // namespace baton
