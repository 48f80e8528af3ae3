// Importers: bring recorded outcomes into the Store.
//
// ImportDir reads baton's dataset layout (a folder with models.csv, queries.jsonl, outcomes.csv and, optionally,
// responses.jsonl; see data/README.md). ImportWide reads the "one column per model" matrix of RouterBench and
// RouteLLM CSVs. Each import is one transaction: on any error nothing of it is written, and the error names the
// file, the line and what was wrong.
//
// Thread-safety: uses the Store it is given; see Store.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "baton/status.h"
#include "baton/store.h"

namespace baton {

struct ImportSummary {
  std::string dataset;
  size_t experts = 0;  // experts named by the import (new or existing)
  size_t queries = 0;
  size_t outcomes = 0;
  size_t responses = 0;
  size_t replaced_queries = 0;     // queries of the same dataset deleted first (ImportOptions::replace)
  std::vector<std::string> notes;  // what the import did that the user should hear of, e.g. a column it skipped
};

struct ImportOptions {
  std::string dataset;         // dataset name stored with each query. Default: the folder's base name
  bool with_responses = true;  // also import responses.jsonl when present. Default: true
  // Delete the dataset's stored queries, outcomes and responses first, in the import's transaction, so a failed
  // re-import leaves the old copy. Default: false (a second import of the same dataset fails on its first query)
  bool replace = false;
};

StatusOr<ImportSummary> ImportDir(Store& store, const std::string& dir, const ImportOptions& options = {});

struct WideImportOptions {
  std::string query_col;                 // column holding the query id (required)
  std::string text_col;                  // column holding the prompt text (required)
  std::string domain_col;                // column holding the domain; "" = none. Default: none
  std::string dataset;                   // Default: the file's base name without extension
  std::vector<std::string> model_cols;   // score columns; empty = every other column without a '|'. Default: empty
  std::vector<std::string> ignore_cols;  // columns to skip when model_cols is empty. Default: none
  bool replace = false;                  // as ImportOptions::replace. Default: false
};

// Reads a wide CSV: one row a query, one score column per model (0/1 or a score in [0, 1]; a blank cell = not
// observed), optional `<model>|total_cost` (cost in USD) and `<model>|model_response` (answer text) columns.
StatusOr<ImportSummary> ImportWide(Store& store, const std::string& csv_path, const WideImportOptions& options);

// Writes the wide form of one stored dataset (all its experts) as CSV text with columns
// `query_id,domain,text,<model>...,<model>|total_cost...` — the inverse of ImportWide.
StatusOr<std::string> ExportWide(Store& store, const std::string& dataset);

}  // namespace baton
