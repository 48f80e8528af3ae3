// A loopback HTTP client for the gateway's tests (libcurl, one easy handle per call). Test-only.
#pragma once

#include <curl/curl.h>

#include <map>
#include <string>
#include <vector>

namespace baton::gateway::testing {

struct HttpResult {
  long status = 0;  // 0 = no response (connection failed)
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string error;
};

inline size_t AppendBody(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

inline size_t AppendHeader(char* p, size_t size, size_t n, void* out) {
  std::string line(p, size * n);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string k = line.substr(0, colon), v = line.substr(colon + 1);
    for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(out))[k] = v;
  }
  return size * n;
}

// method "GET" or "POST"; key "" = no Authorization header.
inline HttpResult Http(const std::string& method, int port, const std::string& path, const std::string& body = "",
                       const std::string& key = "", std::vector<std::string> extra_headers = {}) {
  HttpResult r;
  CURL* c = curl_easy_init();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_slist* h = nullptr;
  if (!key.empty()) extra_headers.push_back("Authorization: Bearer " + key);
  if (method == "POST") {
    extra_headers.push_back("Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  for (const auto& x : extra_headers) h = curl_slist_append(h, x.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, AppendHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  const CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  } else {
    r.error = curl_easy_strerror(rc);
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

inline std::string ChatBody(const std::string& model, const std::string& prompt, bool stream = false,
                            const std::string& extra = "") {
  std::string escaped;
  for (char ch : prompt) {
    if (ch == '"' || ch == '\\') escaped += '\\';
    if (ch == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += ch;
  }
  return "{\"model\": \"" + model + "\", \"messages\": [{\"role\": \"user\", \"content\": \"" + escaped + "\"}]" +
         (stream ? ", \"stream\": true" : "") + extra + "}";
}

}  // namespace baton::gateway::testing
