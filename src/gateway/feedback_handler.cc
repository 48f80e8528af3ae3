// POST /v1/feedback: a client's own judgement of an answer the gateway gave it becomes a live outcome.
//
// Body: {"request_id": "<x-request-id of the answer>", "score": 0..1, "note": "optional text"}. Authenticated with the
// same client keys as chat requests; a key can only judge its own requests. The checks that need the store (does the
// request exist, was it made with this key, was it answered, has it feedback already) and the writes (the live query,
// the outcome, the feedback row) run as one all-or-nothing unit on the recorder's writer thread, so a rejected
// feedback changes nothing and two feedbacks for one request can never both be stored (the feedback table's primary
// key on request_id). Answers (OpenAI-shaped errors):
//   200 accepted                  {"object": "feedback", "request_id", "expert", "score", "outcome_id"}
//   400 invalid_json / invalid_request   malformed JSON, missing or non-string request_id, score missing, not a number
//                                        or outside [0, 1], note not a string or too long
//   401 missing_api_key / invalid_api_key
//   404 request_not_found         no such request for this key (another key's request gets exactly this answer, so a
//                                 client learns nothing about other keys' requests)
//   409 feedback_exists           the request already has feedback
//   422 request_not_answered      the request failed, was refused or was cancelled: no answer to judge
//   503 recorder_busy / 500 feedback_not_recorded   the store could not take it (nothing was written)
#include <cmath>
#include <memory>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "baton/json_limits.h"
#include "gateway/gateway_state.h"

namespace baton::gateway {

namespace {
constexpr size_t kMaxRequestIdBytes = 200;
constexpr size_t kMaxNoteBytes = 4096;
}  // namespace

void HandleFeedback(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex) {
  auto reject = [&](int status, std::string_view message, std::string_view type, const std::string& code) {
    s.metrics.CountFeedback(code);
    ex->Respond(ErrorResponse(status, message, type, code));
  };
  HttpResponse err;
  std::optional<size_t> key = Authenticate(s, req, &err);
  if (!key) {
    s.metrics.CountFeedback("unauthenticated");
    return ex->Respond(std::move(err));
  }
  if (Status depth = CheckJsonDepth(req.body); !depth.ok()) {
    return reject(400, depth.message(), "invalid_request_error", "invalid_json");
  }
  const nlohmann::json j = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return reject(400, "the body is not valid JSON; expected {\"request_id\": \"...\", \"score\": 0..1}",
                  "invalid_request_error", "invalid_json");
  }
  if (!j.is_object()) {
    return reject(400, "the body must be a JSON object: {\"request_id\": \"...\", \"score\": 0..1}",
                  "invalid_request_error", "invalid_request");
  }
  const auto id = j.find("request_id");
  if (id == j.end() || !id->is_string() || id->get_ref<const std::string&>().empty() ||
      id->get_ref<const std::string&>().size() > kMaxRequestIdBytes) {
    return reject(400,
                  fmt::format("'request_id' must be a non-empty string of at most {} bytes: the x-request-id header "
                              "of the answer being judged",
                              kMaxRequestIdBytes),
                  "invalid_request_error", "invalid_request");
  }
  const auto score = j.find("score");
  if (score == j.end() || !score->is_number()) {
    return reject(400, "'score' must be a number in [0, 1] (1 = the answer was right / fully useful)",
                  "invalid_request_error", "invalid_request");
  }
  const double v = score->get<double>();
  if (!std::isfinite(v) || v < 0 || v > 1) {
    return reject(400, fmt::format("'score' {} is outside [0, 1]", score->dump()), "invalid_request_error",
                  "invalid_request");
  }
  std::string note;
  if (const auto n = j.find("note"); n != j.end() && !n->is_null()) {
    if (!n->is_string() || n->get_ref<const std::string&>().size() > kMaxNoteBytes) {
      return reject(400, fmt::format("'note' must be a string of at most {} bytes", kMaxNoteBytes),
                    "invalid_request_error", "invalid_request");
    }
    note = n->get<std::string>();
  }
  FeedbackSubmission f{.request_id = id->get<std::string>(),
                       .client_key_hash = s.config.keys[*key].key_sha256,
                       .score = v,
                       .note = std::move(note)};
  boost::asio::io_context& loop = ex->loop();
  Gateway::State* state = &s;
  const bool queued = s.recorder->RecordFeedback(f, [state, ex, &loop, request_id = f.request_id,
                                                     v](StatusOr<FeedbackResult> r) {
    // On the recorder's writer thread: answer from the request's own loop.
    boost::asio::post(loop, [state, ex, r = std::move(r), request_id, v]() {
      auto fail = [&](int status, std::string_view type, const std::string& code) {
        state->metrics.CountFeedback(code);
        ex->Respond(ErrorResponse(status, r.status().message(), type, code));
      };
      if (r.ok()) {
        state->metrics.CountFeedback("accepted");
        const nlohmann::json body = {{"object", "feedback"},
                                     {"request_id", request_id},
                                     {"expert", r->expert},
                                     {"score", v},
                                     {"outcome_id", r->outcome_id}};
        return ex->Respond(MakeHttpResponse(200, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
      }
      switch (r.status().code()) {
        case StatusCode::kNotFound:
          return fail(404, "invalid_request_error", "request_not_found");
        case StatusCode::kAlreadyExists:
          return fail(409, "invalid_request_error", "feedback_exists");
        case StatusCode::kFailedPrecondition:
          return fail(422, "invalid_request_error", "request_not_answered");
        default:
          std::fprintf(stderr, "baton serve: feedback on %s not recorded: %s\n", request_id.c_str(),
                       r.status().ToString().c_str());
          state->metrics.CountFeedback("not_recorded");
          return ex->Respond(ErrorResponse(500, "the feedback could not be recorded (nothing was written)",
                                           "server_error", "feedback_not_recorded"));
      }
    });
  });
  if (!queued) {
    HttpResponse r = ErrorResponse(503, "the gateway's recorder is full; retry later", "server_error", "recorder_busy");
    r.headers.emplace_back("Retry-After", "1");
    s.metrics.CountFeedback("recorder_busy");
    ex->Respond(std::move(r));
  }
}

}  // namespace baton::gateway
