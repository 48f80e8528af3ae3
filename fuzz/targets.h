// The fuzz targets: every place where outside bytes enter baton, as one function each.
//
// Both the libFuzzer binaries (fuzz/fuzzer_main.cc, built by scripts/fuzz.sh with clang and sanitizers) and the
// regression replay in the normal test suite (fuzz/fuzz_regression_test.cc, which feeds every file under
// fuzz/corpus/<target>/ and fuzz/regressions/<target>/) call these functions, so the two cannot drift.
//
// A target runs one input through the real entry point (parser, importer, loader) and then checks what the entry
// point promises of its result. It never catches exceptions: one that escapes is a finding (libFuzzer aborts, the
// replay test fails). Crashes and undefined behaviour are found by the sanitizers in the fuzz build.
//
// Thread-safety: the importer targets write their input files into one scratch folder; run targets from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "baton/status.h"

namespace baton::fuzz {

struct FuzzResult {
  Status status;          // what the entry point returned for the input (the first error, for multi-step targets)
  std::string violation;  // "" or the promise the result broke, e.g. "a failed import left 3 experts behind"
};

using TargetFn = FuzzResult (*)(std::string_view input);

struct Target {
  const char* name;  // the folder under fuzz/corpus/ and fuzz/regressions/, and the binary's name + "_fuzzer"
  TargetFn fn;
};

// The targets, by name:
//   request_parser  ParseChatCompletionRequest on a /v1/chat/completions body
//   config          ParseGatewayConfig on the YAML of `baton serve --config`
//   import_csv      ImportDir with the input as outcomes.csv; after a line "%%models.csv" the rest is models.csv
//                   (otherwise a fixed models.csv); queries.jsonl is fixed (queries q1..q4)
//   import_jsonl    ImportDir with the input as queries.jsonl; after a line "%%responses.jsonl" the rest is
//                   responses.jsonl; models.csv is fixed, outcomes.csv has its header only
//   import_wide     ImportWide on the input as a wide CSV, columns as RouterBench names them: sample_id, prompt,
//                   eval_name, `oracle` ignored
//   model           ParseModel (model files of `baton fit`) on the input as is, then on the input with its length
//                   field and checksum repaired so that mutations reach the predictor's LoadState; a model that
//                   loads is asked for predictions
const std::vector<Target>& Targets();
// nullptr for an unknown name.
TargetFn FindTarget(std::string_view name);

// Where the importer targets write their files. Default: a folder made under $TMPDIR (or /tmp) on first use and
// removed at exit. The replay test points it at its own temporary folder.
void SetScratchDir(const std::string& dir);

}  // namespace baton::fuzz
