// The store's schema, one version at a time. Bump kSchemaVersion and add a migration step when it changes.
// Steps are written in SQLite's DDL; the PostgreSQL connection translates them (INTEGER PRIMARY KEY -> identity,
// INTEGER -> BIGINT, REAL -> DOUBLE PRECISION, WITHOUT ROWID dropped; see postgres.cc TranslateDdl), so keep to
// those spellings.
#pragma once

namespace baton::store {

inline constexpr int kSchemaVersion = 7;

inline constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS experts (
  id               INTEGER PRIMARY KEY,
  name             TEXT NOT NULL UNIQUE,
  params_b         REAL,
  usd_per_mtok_in  REAL CHECK (usd_per_mtok_in IS NULL OR usd_per_mtok_in >= 0),
  usd_per_mtok_out REAL CHECK (usd_per_mtok_out IS NULL OR usd_per_mtok_out >= 0),
  price_source     TEXT NOT NULL DEFAULT '',
  backend_json     TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS queries (
  id          INTEGER PRIMARY KEY,
  external_id TEXT NOT NULL,
  dataset     TEXT NOT NULL DEFAULT '',
  domain      TEXT NOT NULL DEFAULT '',
  text        TEXT NOT NULL,
  reference   TEXT NOT NULL DEFAULT '',
  source      TEXT NOT NULL DEFAULT '',
  UNIQUE (dataset, external_id)
);
CREATE TABLE IF NOT EXISTS outcomes (
  id           INTEGER PRIMARY KEY,
  query_id     INTEGER NOT NULL REFERENCES queries(id),
  expert_id    INTEGER NOT NULL REFERENCES experts(id),
  score        REAL NOT NULL CHECK (score >= 0 AND score <= 1),
  cost_usd     REAL CHECK (cost_usd IS NULL OR cost_usd >= 0),
  tokens_in    INTEGER CHECK (tokens_in IS NULL OR tokens_in >= 0),
  tokens_out   INTEGER CHECK (tokens_out IS NULL OR tokens_out >= 0),
  latency_ms   REAL,
  source       TEXT NOT NULL CHECK (source IN ('imported', 'live', 'selfplay')),
  time_unix_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_by_query ON outcomes(query_id, expert_id);
CREATE UNIQUE INDEX IF NOT EXISTS outcomes_imported_once ON outcomes(query_id, expert_id) WHERE source = 'imported';
CREATE TABLE IF NOT EXISTS responses (
  query_id  INTEGER NOT NULL REFERENCES queries(id),
  expert_id INTEGER NOT NULL REFERENCES experts(id),
  text      TEXT NOT NULL,
  PRIMARY KEY (query_id, expert_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (
  id              INTEGER PRIMARY KEY,
  time_unix_ms    INTEGER NOT NULL,
  client_key_hash TEXT NOT NULL DEFAULT '',
  requested_model TEXT NOT NULL DEFAULT '',
  expert          TEXT NOT NULL DEFAULT '',
  http_status     INTEGER NOT NULL,
  tokens_in       INTEGER,
  tokens_out      INTEGER,
  cost_usd        REAL,
  latency_ms      REAL,
  prompt          TEXT
);
)sql";

// v2: the gateway's per-client-key budgets (key_hash = SHA-256 hex of the key; the key itself is never stored).
inline constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS client_budgets (
  key_hash     TEXT PRIMARY KEY,
  name         TEXT NOT NULL DEFAULT '',
  budget_usd   REAL NOT NULL CHECK (budget_usd >= 0),
  spent_usd    REAL NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
  reserved_usd REAL NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0)
) WITHOUT ROWID;
)sql";

// v3: a request's id (the x-request-id the gateway answers with) and a short note on how it ended (a client that
// went away, usage an upstream misreported), so that a log row can be found from a client's report.
inline constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE requests ADD COLUMN request_id TEXT;
ALTER TABLE requests ADD COLUMN note TEXT;
CREATE INDEX IF NOT EXISTS requests_by_id ON requests(request_id);
)sql";

// v4: Archon architecture runs, one row per inference call (or per component that makes none).
inline constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE IF NOT EXISTS archon_calls (
  id                INTEGER PRIMARY KEY,
  time_unix_ms      INTEGER NOT NULL,
  run_id            TEXT NOT NULL DEFAULT '',
  architecture      TEXT NOT NULL DEFAULT '',
  layer             INTEGER NOT NULL,
  component_index   INTEGER NOT NULL,
  component         TEXT NOT NULL,
  expert            TEXT NOT NULL DEFAULT '',
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd          REAL NOT NULL DEFAULT 0,
  latency_ms        REAL NOT NULL DEFAULT 0,
  status            TEXT NOT NULL DEFAULT 'ok',
  parse             TEXT NOT NULL DEFAULT 'n/a'
);
CREATE INDEX IF NOT EXISTS archon_calls_by_run ON archon_calls(run_id);
)sql";

// v5: the learning loop. `feedback`: a client's judgement of an answered request (POST /v1/feedback), at most one per
// request (the primary key makes a second one impossible, even from two gateways at once); it names the outcome row
// it became (source 'live'). `onboarding`: what `baton onboard` decided about a candidate expert, with its evidence.
inline constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE IF NOT EXISTS feedback (
  request_id      TEXT PRIMARY KEY,
  client_key_hash TEXT NOT NULL,
  score           REAL NOT NULL CHECK (score >= 0 AND score <= 1),
  note            TEXT,
  query_id        INTEGER NOT NULL REFERENCES queries(id),
  expert_id       INTEGER NOT NULL REFERENCES experts(id),
  outcome_id      INTEGER NOT NULL REFERENCES outcomes(id),
  time_unix_ms    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS onboarding (
  id            INTEGER PRIMARY KEY,
  time_unix_ms  INTEGER NOT NULL,
  expert        TEXT NOT NULL,
  decision      TEXT NOT NULL CHECK (decision IN ('join', 'replace', 'reject')),
  replaces      TEXT NOT NULL DEFAULT '',
  evidence_json TEXT NOT NULL
);
)sql";

// v6: shared budgets. A reservation holds part of a key's budget for a call in flight, until it is settled or
// expires (ReleaseExpiredReservations); client_budgets.reserved_usd is the sum of the key's live reservations.
inline constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE IF NOT EXISTS budget_reservations (
  id              INTEGER PRIMARY KEY,
  key_hash        TEXT NOT NULL REFERENCES client_budgets(key_hash),
  amount_usd      REAL NOT NULL CHECK (amount_usd >= 0),
  holder          TEXT NOT NULL DEFAULT '',
  expires_unix_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS budget_reservations_by_key ON budget_reservations(key_hash);
CREATE INDEX IF NOT EXISTS budget_reservations_by_expiry ON budget_reservations(expires_unix_ms);
)sql";

// v7: a request is logged once. The recorder retries a batch whose commit it could not confirm (the connection died
// as it committed); the request id (x-request-id, made by the gateway) being unique makes that retry idempotent.
// Copies a retry made before v7 are dropped, keeping the first.
inline constexpr const char* kSchemaV7 = R"sql(
DELETE FROM requests WHERE request_id IS NOT NULL AND request_id <> '' AND id NOT IN (
  SELECT min(id) FROM requests WHERE request_id IS NOT NULL AND request_id <> '' GROUP BY request_id);
CREATE UNIQUE INDEX IF NOT EXISTS requests_once ON requests(request_id) WHERE request_id IS NOT NULL AND request_id <> '';
)sql";

// kSchemaSteps[v - 1] brings a database from version v - 1 to v.
inline constexpr const char* kSchemaSteps[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4,
                                               kSchemaV5, kSchemaV6, kSchemaV7};
static_assert(sizeof(kSchemaSteps) / sizeof(kSchemaSteps[0]) == kSchemaVersion);

}  // namespace baton::store
