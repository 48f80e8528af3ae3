// Model files. Layout (little-endian):
//   "BATONMDL" | u32 format version | u64 payload size | payload | u64 FNV-1a-64 of payload
//   payload = str predictor name | str cost model bytes | str predictor state | u64 count n | n x u64 training
//             outcomes per expert (n = 0: unknown)
#include <unistd.h>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <system_error>

#include "baton/file.h"
#include "baton/predictor.h"
#include "predict/model_io.h"
#include "predict/serial.h"

namespace baton {
namespace {

constexpr char kMagic[8] = {'B', 'A', 'T', 'O', 'N', 'M', 'D', 'L'};

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

}  // namespace

Status SaveModel(const RouterModel& model, const std::string& path) {
  if (!model.predictor) return Status::InvalidArgument("SaveModel: the model has no predictor");
  std::string state;
  model.predictor->SaveState(&state);
  if (state.empty()) return Status::FailedPrecondition("predictor '" + model.predictor->name() + "' cannot be saved");
  if (!model.train_outcomes.empty() && model.train_outcomes.size() != model.predictor->num_experts()) {
    return Status::InvalidArgument("SaveModel: training counts do not match the experts");
  }
  std::string payload;
  predict::ByteWriter pw(&payload);
  pw.Str(model.predictor->name());
  pw.Str(model.cost.Serialize());
  pw.Str(state);
  pw.U64(model.train_outcomes.size());
  for (uint64_t n : model.train_outcomes) pw.U64(n);
  std::string file(kMagic, sizeof(kMagic));
  predict::ByteWriter fw(&file);
  fw.U32(kModelFormatVersion);
  fw.U64(payload.size());
  file += payload;
  fw.U64(Fnv1a64(payload));
  return WriteFileAtomically(path, file);
}

StatusOr<RouterModel> LoadModel(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open model file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseModel(ss.str(), path);
}

StatusOr<RouterModel> ParseModel(std::string_view file, const std::string& path) {
  if (file.size() < sizeof(kMagic) || file.compare(0, sizeof(kMagic), kMagic, sizeof(kMagic)) != 0) {
    return Status::DataLoss(path + " is not a baton model file (bad magic)");
  }
  predict::ByteReader hr(file.substr(sizeof(kMagic)));
  const uint32_t version = hr.U32();
  if (!hr.ok()) return Status::DataLoss(path + ": model file truncated in its header");
  if (version != kModelFormatVersion) {
    return Status::FailedPrecondition(path + ": model file version " + std::to_string(version) + ", this baton reads " +
                                      std::to_string(kModelFormatVersion));
  }
  const uint64_t size = hr.U64();
  const size_t header = sizeof(kMagic) + 12;
  if (!hr.ok() || file.size() < header + 8 || size != file.size() - header - 8) {
    return Status::DataLoss(path + ": model file truncated or has trailing bytes (" + std::to_string(file.size()) +
                            " bytes)");
  }
  const std::string_view payload = file.substr(header, size);
  uint64_t stored = 0;
  std::memcpy(&stored, file.data() + header + size, 8);
  if (stored != Fnv1a64(payload)) return Status::DataLoss(path + ": model file checksum mismatch (corrupted)");

  predict::ByteReader pr(payload);
  const std::string name = pr.Str();
  const std::string cost = pr.Str();
  const std::string state = pr.Str();
  const uint64_t n_counts = pr.U64();
  std::vector<uint64_t> counts;
  for (uint64_t i = 0; i < n_counts && pr.ok(); ++i) counts.push_back(pr.U64());
  BATON_RETURN_IF_ERROR(pr.Finish().WithContext(path));
  RouterModel model;
  StatusOr<std::unique_ptr<Predictor>> p = MakePredictor(name);
  if (!p.ok()) return Status::DataLoss(path + ": " + p.status().message());
  model.predictor = std::move(*p);
  BATON_RETURN_IF_ERROR(model.predictor->LoadState(state).WithContext(path));
  BATON_ASSIGN_OR_RETURN(model.cost, CostModel::Deserialize(cost));
  if (model.cost.experts() != model.predictor->experts()) {
    return Status::DataLoss(path + ": cost model and predictor disagree on the experts");
  }
  if (!counts.empty() && counts.size() != model.predictor->num_experts()) {
    return Status::DataLoss(path + ": training counts and predictor disagree on the experts");
  }
  model.train_outcomes = std::move(counts);
  return model;
}

std::vector<std::string> RouterModel::ColdExperts() const {
  std::vector<std::string> cold;
  for (size_t e = 0; e < train_outcomes.size() && predictor; ++e) {
    if (train_outcomes[e] == 0) cold.push_back(predictor->experts()[e]);
  }
  return cold;
}

}  // namespace baton
