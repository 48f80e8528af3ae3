// Archon configurations: parsing (three layer forms, unknown keys kept, line:column locations) and validation.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "baton/archon.h"

namespace baton::archon {
namespace {

using json = nlohmann::json;

// Line and column (1-based) of each value of a valid JSON text, by JSON pointer ("/layers/0/1"); an object member
// is located by its key. nlohmann::json
// keeps no positions, so this walks the (already validated) text once.
class Locator {
 public:
  explicit Locator(std::string_view text) : text_(text) {}
  std::map<std::string, SourceLocation> Run() {
    Skip();
    Value("");
    return std::move(out_);
  }

 private:
  void Skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) Advance();
  }
  void Advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else if ((static_cast<unsigned char>(text_[pos_]) & 0xC0) != 0x80) {
      ++col_;
    }
    ++pos_;
  }
  std::string String() {  // at '"'; returns the raw (unescaped) key, enough for the keys we look up
    std::string s;
    Advance();
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\\') {
        s += text_[pos_];
        Advance();
      }
      if (pos_ < text_.size()) {
        s += text_[pos_];
        Advance();
      }
    }
    if (pos_ < text_.size()) Advance();
    return s;
  }
  void Value(const std::string& path) {
    if (pos_ >= text_.size()) return;
    out_[path] = {line_, col_};
    const char c = text_[pos_];
    if (c == '{') {
      Advance();
      Skip();
      while (pos_ < text_.size() && text_[pos_] != '}') {
        const SourceLocation key_at{line_, col_};
        std::string key = String();
        Skip();
        if (pos_ < text_.size()) Advance();  // ':'
        Skip();
        Value(path + "/" + key);
        out_[path + "/" + key] = key_at;  // a member is located by its key (a message about it names the key)
        Skip();
        if (pos_ < text_.size() && text_[pos_] == ',') {
          Advance();
          Skip();
        }
      }
      if (pos_ < text_.size()) Advance();
    } else if (c == '[') {
      Advance();
      Skip();
      int i = 0;
      while (pos_ < text_.size() && text_[pos_] != ']') {
        Value(fmt::format("{}/{}", path, i++));
        Skip();
        if (pos_ < text_.size() && text_[pos_] == ',') {
          Advance();
          Skip();
        }
      }
      if (pos_ < text_.size()) Advance();
    } else if (c == '"') {
      String();
    } else {
      while (pos_ < text_.size() && !std::isspace(static_cast<unsigned char>(text_[pos_])) && text_[pos_] != ',' &&
             text_[pos_] != ']' && text_[pos_] != '}')
        Advance();
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1, col_ = 1;
  std::map<std::string, SourceLocation> out_;
};

SourceLocation LineColumnOf(std::string_view text, size_t byte) {
  SourceLocation loc{1, 1};
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++loc.line;
      loc.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++loc.column;
    }
  }
  return loc;
}

const std::set<std::string>& KnownComponentKeys() {
  static const std::set<std::string> k = {"type",       "model",   "model_type", "temperature",
                                          "max_tokens", "samples", "top_k"};
  return k;
}

class Parser {
 public:
  Parser(std::map<std::string, SourceLocation> where, ParseResult* out) : where_(std::move(where)), out_(out) {}

  void Top(const json& j, const std::string& source) {
    Architecture& a = out_->architecture;
    a.source = source;
    if (!j.is_object())
      return Error("", -1, -1, "the configuration must be a JSON object {\"name\": ..., \"layers\": [...]}");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "name") {
        if (it->is_string())
          a.name = it->get<std::string>();
        else
          Error("/name", -1, -1, "'name' must be a string");
      } else if (it.key() != "layers") {
        a.unknown[it.key()] = *it;
        Warn("/" + it.key(), -1, -1, fmt::format("unknown key '{}' (kept, ignored)", it.key()));
      }
    }
    if (a.name.empty()) {
      std::string stem = std::filesystem::path(source).stem().string();
      a.name = stem.empty() ? "archon" : stem;
    }
    auto layers = j.find("layers");
    if (layers == j.end()) return Error("", -1, -1, "missing 'layers' (a list of layers)");
    if (!layers->is_array()) return Error("/layers", -1, -1, "'layers' must be a list of layers");
    if (layers->empty()) return Error("/layers", -1, -1, "'layers' is empty: an architecture needs at least one layer");
    for (size_t l = 0; l < layers->size(); ++l) LayerOf((*layers)[l], static_cast<int>(l));
  }

 private:
  void LayerOf(const json& j, int l) {
    const std::string path = fmt::format("/layers/{}", l);
    Layer layer;
    layer.where = At(path);
    std::vector<std::pair<const json*, std::string>> items;  // component value, its pointer
    if (j.is_array()) {
      for (size_t c = 0; c < j.size(); ++c) items.emplace_back(&j[c], fmt::format("{}/{}", path, c));
    } else if (j.is_object() && j.contains("models") && !j.contains("type")) {
      // The older form {"branches": n, "models": [components]}: the layer runs its models' components.
      const json& models = j["models"];
      if (!models.is_array()) {
        Error(path + "/models", l, -1, "'models' must be a list of components");
      } else {
        for (size_t c = 0; c < models.size(); ++c) items.emplace_back(&models[c], fmt::format("{}/models/{}", path, c));
      }
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "models") continue;
        if (it.key() == "branches") {
          if (!it->is_number_integer() || it->get<int64_t>() < 1) {
            Warn(path + "/branches", l, -1, "'branches' is not a positive integer (ignored)");
          } else if (models.is_array() && it->get<size_t>() != models.size()) {
            Warn(path + "/branches", l, -1,
                 fmt::format("'branches' is {} but the layer lists {} models; it runs the {} listed",
                             it->get<int64_t>(), models.size(), models.size()));
          }
          continue;
        }
        Warn(path + "/" + it.key(), l, -1, fmt::format("unknown layer key '{}' (kept, ignored)", it.key()));
      }
    } else if (j.is_object()) {
      items.emplace_back(&j, path);  // a single component object
    } else {
      Error(path, l, -1, "a layer must be a list of components, a component object or {\"branches\", \"models\"}");
    }
    if (items.empty() && (j.is_array() || j.is_object())) Error(path, l, -1, "empty layer: it has no component");
    for (size_t c = 0; c < items.size(); ++c) {
      std::optional<Component> comp = ComponentOf(*items[c].first, items[c].second, l, static_cast<int>(c));
      if (comp) layer.components.push_back(std::move(*comp));
    }
    out_->architecture.layers.push_back(std::move(layer));
  }

  std::optional<Component> ComponentOf(const json& j, const std::string& path, int l, int c) {
    if (!j.is_object()) {
      Error(path, l, c, "a component must be a JSON object with a 'type'");
      return std::nullopt;
    }
    Component comp;
    comp.where = At(path);
    bool ok = true;
    auto type = j.find("type");
    if (type == j.end()) {
      Error(path, l, c, "missing 'type'");
      ok = false;
    } else if (!type->is_string()) {
      Error(path + "/type", l, c, "'type' must be a string");
      ok = false;
    } else if (auto t = ComponentTypeFromName(type->get<std::string>())) {
      comp.type = *t;
    } else {
      Error(path + "/type", l, c,
            fmt::format("unknown component type '{}' (known: generator, fuser, ranker, critic, verifier, "
                        "unit_test_generator, unit_test_evaluator, vote, predicted_ranker)",
                        type->get<std::string>().substr(0, 60)));
      ok = false;
    }
    auto str = [&](const char* key, std::string* dst) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return;
      if (it->is_string()) {
        *dst = it->get<std::string>();
      } else {
        Error(path + "/" + key, l, c, fmt::format("'{}' must be a string", key));
        ok = false;
      }
    };
    str("model", &comp.model);
    str("model_type", &comp.model_type);
    auto integer = [&](const char* key, auto* dst, int64_t lo) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return;
      const bool whole =
          it->is_number_integer() || (it->is_number_float() && it->get<double>() == std::floor(it->get<double>()));
      if (!whole || it->get<double>() < static_cast<double>(lo) || it->get<double>() > 1e7) {
        Error(path + "/" + key, l, c, fmt::format("'{}' must be an integer >= {}", key, lo));
        ok = false;
        return;
      }
      *dst = static_cast<std::remove_pointer_t<decltype(dst)>>(it->get<double>());
    };
    integer("max_tokens", &comp.max_tokens, 1);
    integer("samples", &comp.samples, 1);
    integer("top_k", &comp.top_k, 1);
    if (auto it = j.find("temperature"); it != j.end() && !it->is_null()) {
      if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 2) {
        Error(path + "/temperature", l, c, "'temperature' must be a number in [0, 2]");
        ok = false;
      } else {
        comp.temperature = it->get<double>();
      }
    }
    if (ok && NeedsModel(comp.type) && comp.model.empty()) {
      Error(path, l, c, fmt::format("missing 'model' (a {} calls an expert)", ComponentTypeName(comp.type)));
      ok = false;
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (KnownComponentKeys().count(it.key())) continue;
      comp.unknown[it.key()] = *it;
      Warn(path + "/" + it.key(), l, c, fmt::format("unknown key '{}' (kept, ignored)", it.key()));
    }
    if (!ok) return std::nullopt;
    return comp;
  }

  SourceLocation At(const std::string& path) const {
    auto it = where_.find(path);
    return it == where_.end() ? SourceLocation{} : it->second;
  }
  void Error(const std::string& path, int l, int c, std::string msg) {
    out_->errors.push_back({At(path), l, c, std::move(msg)});
  }
  void Warn(const std::string& path, int l, int c, std::string msg) {
    out_->warnings.push_back({At(path), l, c, std::move(msg)});
  }

  std::map<std::string, SourceLocation> where_;
  ParseResult* out_;
};

}  // namespace

const char* ComponentTypeName(ComponentType type) {
  switch (type) {
    case ComponentType::kGenerator:
      return "generator";
    case ComponentType::kFuser:
      return "fuser";
    case ComponentType::kRanker:
      return "ranker";
    case ComponentType::kCritic:
      return "critic";
    case ComponentType::kVerifier:
      return "verifier";
    case ComponentType::kUnitTestGenerator:
      return "unit_test_generator";
    case ComponentType::kUnitTestEvaluator:
      return "unit_test_evaluator";
    case ComponentType::kVote:
      return "vote";
    case ComponentType::kPredictedRanker:
      return "predicted_ranker";
  }
  return "generator";
}

std::optional<ComponentType> ComponentTypeFromName(std::string_view name) {
  static const std::map<std::string, ComponentType, std::less<>> kNames = {
      {"generator", ComponentType::kGenerator},
      {"fuser", ComponentType::kFuser},
      {"ranker", ComponentType::kRanker},
      {"critic", ComponentType::kCritic},
      {"verifier", ComponentType::kVerifier},
      {"unit_test_generator", ComponentType::kUnitTestGenerator},
      {"unit_test_evaluator", ComponentType::kUnitTestEvaluator},
      {"vote", ComponentType::kVote},
      {"vote_fuser", ComponentType::kVote},
      {"predicted_ranker", ComponentType::kPredictedRanker},
      {"predicted_score_ranker", ComponentType::kPredictedRanker},
  };
  auto it = kNames.find(name);
  if (it == kNames.end()) return std::nullopt;
  return it->second;
}

bool NeedsModel(ComponentType type) {
  return type != ComponentType::kVote && type != ComponentType::kPredictedRanker;
}

std::string Diagnostic::ToString(const std::string& source) const {
  std::string s = source;
  if (where.line > 0) s += fmt::format(":{}:{}", where.line, where.column);
  s += ": ";
  if (layer >= 0) s += fmt::format("layer {}", layer + 1);
  if (component >= 0) s += fmt::format(" component {}", component + 1);
  if (layer >= 0) s += ": ";
  return s + message;
}

ParseResult ParseArchitecture(std::string_view json_text, const std::string& source) {
  ParseResult out;
  out.architecture.source = source;
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    // e.byte is 1-based, pointing at (or just past) the offending character.
    const size_t byte = e.byte > 0 ? e.byte - 1 : 0;
    std::string what = e.what();
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    out.errors.push_back({LineColumnOf(json_text, byte), -1, -1, "invalid JSON: " + what});
    return out;
  }
  Parser(Locator(json_text).Run(), &out).Top(j, source);
  return out;
}

StatusOr<ParseResult> LoadArchitecture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("{}: cannot open the architecture file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError(fmt::format("{}: read error", path));
  return ParseArchitecture(ss.str(), path);
}

const ExpertConfig* FindExpertConfig(const std::vector<ExpertConfig>& experts, std::string_view model) {
  for (const ExpertConfig& e : experts)
    if (e.name == model) return &e;
  const ExpertConfig* found = nullptr;
  for (const ExpertConfig& e : experts) {
    if (e.model == model) {
      if (found != nullptr) return nullptr;  // ambiguous
      found = &e;
    }
  }
  return found;
}

void Validate(const ValidateOptions& options, ParseResult* result) {
  if (!result->errors.empty()) return;  // a partly parsed architecture would give misleading follow-up errors
  const Architecture& a = result->architecture;
  auto error = [&](const Component& c, int l, int i, std::string msg) {
    result->errors.push_back({c.where, l, i, std::move(msg)});
  };
  auto warn = [&](SourceLocation w, int l, int i, std::string msg) {
    result->warnings.push_back({w, l, i, std::move(msg)});
  };
  auto is_single = [](ComponentType t) {
    return t == ComponentType::kRanker || t == ComponentType::kCritic || t == ComponentType::kVerifier ||
           t == ComponentType::kUnitTestGenerator || t == ComponentType::kUnitTestEvaluator;
  };
  auto produces = [](ComponentType t) {  // replaces the candidates
    return t != ComponentType::kCritic && t != ComponentType::kUnitTestGenerator;
  };
  // Upper bounds flowing between layers: how many candidates and how many tokens they hold.
  int64_t cands = 0, cand_tokens = 0;
  bool tests = false;
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const Layer& layer = a.layers[l];
    const int li = static_cast<int>(l);
    int64_t out_cands = 0, out_tokens = 0;
    bool replaces = false, writes_tests = false;
    for (size_t i = 0; i < layer.components.size(); ++i) {
      const Component& c = layer.components[i];
      const int ci = static_cast<int>(i);
      const char* name = ComponentTypeName(c.type);
      if (!options.structure_only && NeedsModel(c.type) && FindExpertConfig(options.experts, c.model) == nullptr) {
        error(c, li, ci, fmt::format("model '{}' maps to no configured expert", c.model));
      }
      switch (c.type) {
        case ComponentType::kGenerator:
          out_cands += c.samples;
          out_tokens += c.samples * c.max_tokens;
          break;
        case ComponentType::kFuser:
          if (cands == 0) {
            warn(c.where, li, ci, "fuser with no candidates to fuse: it answers the query like a generator");
          }
          out_cands += c.samples;
          out_tokens += c.samples * c.max_tokens;
          break;
        case ComponentType::kUnitTestGenerator:
          writes_tests = true;
          break;
        case ComponentType::kUnitTestEvaluator:
          if (!tests) {
            error(c, li, ci,
                  "unit_test_evaluator with no unit_test_generator in an earlier layer: nothing to evaluate");
          }
          [[fallthrough]];
        case ComponentType::kRanker:
        case ComponentType::kCritic:
        case ComponentType::kVerifier:
        case ComponentType::kVote:
        case ComponentType::kPredictedRanker:
          if (cands == 0) error(c, li, ci, fmt::format("{} with no candidates: no earlier layer produces any", name));
          if (c.type == ComponentType::kRanker || c.type == ComponentType::kPredictedRanker) {
            const int64_t k = std::min<int64_t>(c.top_k, cands);
            out_cands += k;
            out_tokens += cands > 0 ? cand_tokens * k / cands : 0;
          } else if (c.type == ComponentType::kVote) {
            out_cands += std::min<int64_t>(1, cands);
            out_tokens += cands > 0 ? cand_tokens / cands : 0;
          } else if (c.type != ComponentType::kCritic) {
            out_cands += cands;
            out_tokens += cand_tokens;
          }
          break;
      }
      if (produces(c.type)) replaces = true;
      if (is_single(c.type) && layer.components.size() > 1) {
        warn(c.where, li, ci,
             fmt::format("{} shares its layer with {} other component(s); the paper builds ranker, critic, verifier "
                         "and unit-test layers of one component",
                         name, layer.components.size() - 1));
      }
      const bool reads_all = c.type == ComponentType::kFuser || c.type == ComponentType::kRanker ||
                             c.type == ComponentType::kCritic || (c.type == ComponentType::kGenerator && l > 0);
      if (reads_all && cands > 0 && cand_tokens > options.context_tokens) {
        warn(c.where, li, ci,
             fmt::format("{} reads up to {} candidates of up to {} tokens in all, more than a {}-token context window",
                         name, cands, cand_tokens, options.context_tokens));
      }
      if (c.type == ComponentType::kCritic) {
        // Is the critique read? By the first later layer that touches candidates: a ranker, fuser or verifier reads
        // it; anything else that replaces the candidates drops it.
        bool read = false;
        for (size_t m = l + 1; m < a.layers.size() && !read; ++m) {
          bool touches = false;
          for (const Component& d : a.layers[m].components) {
            if (d.type == ComponentType::kRanker || d.type == ComponentType::kFuser ||
                d.type == ComponentType::kVerifier)
              read = true;
            if (produces(d.type)) touches = true;
          }
          if (touches) break;
        }
        if (!read) {
          warn(c.where, li, ci,
               "critic whose critiques no later layer reads (a ranker, fuser or verifier must come before the "
               "candidates are replaced)");
        }
      }
    }
    if (replaces) {
      cands = out_cands;
      cand_tokens = out_tokens;
    }
    if (writes_tests) tests = true;
  }
}

}  // namespace baton::archon
