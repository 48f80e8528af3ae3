#include "store/backend.h"

#include <algorithm>
#include <cctype>

namespace baton::store {
namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  // `prefix` is lowercase.
  return s.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), s.begin(), [](char p, char c) {
           return std::tolower(static_cast<unsigned char>(c)) == p;
         });
}

}  // namespace

bool IsPostgresUrl(std::string_view target) {
  return StartsWithNoCase(target, "postgresql://") || StartsWithNoCase(target, "postgres://");
}

std::string RedactUrl(std::string_view url) {
  std::string out(url);
  const size_t scheme = out.find("://");
  if (scheme == std::string::npos) return out;
  const size_t start = scheme + 3;
  const size_t end = std::min(out.find('/', start), out.find('?', start));
  const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
  if (at != std::string::npos && at >= start) {
    const size_t colon = out.find(':', start);
    if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  // ...?password=secret&... in the query string too.
  for (size_t p = out.find('?'); p != std::string::npos && p < out.size(); p = out.find('&', p + 1)) {
    const size_t key = p + 1;
    if (!StartsWithNoCase(std::string_view(out).substr(key), "password=")) continue;
    const size_t value = key + 9;
    const size_t stop = out.find('&', value);
    out.replace(value, (stop == std::string::npos ? out.size() : stop) - value, "***");
  }
  return out;
}

std::string PostgresPlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  char quote = 0;  // inside '...' or "..."
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      out += '$';
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace baton::store

namespace baton {
bool IsDatabaseUrl(const std::string& target) { return store::IsPostgresUrl(target); }
std::string DatabaseDisplayName(const std::string& target) {
  return store::IsPostgresUrl(target) ? store::RedactUrl(target) : target;
}
}  // namespace baton

namespace baton::store {

StatusOr<std::unique_ptr<Connection>> OpenConnection(const std::string& target, const StoreOptions& options) {
  if (IsPostgresUrl(target)) return OpenPostgres(target, options);
  return OpenSqlite(target, options);
}

}  // namespace baton::store
