// Internal: what `loom run --resume` knows of the stages that finished in a run folder. Each
// finished stage leaves a record in RUN/stages.json (the fingerprints of its inputs, when it
// finished) and its models' weights in RUN/checkpoints/<stage>/final.safetensors; a later
// --resume reuses a stage whose inputs are unchanged instead of running it again.
#pragma once
#include <map>
#include <string>

#include "loom/export.hpp"

namespace loom {

// Fingerprints (64-bit FNV-1a of a canonical text, in hex) of what a stage's result depends on.
struct StageInputs {
  std::string entry;                            // its pipeline entry, without `epochs`
  std::map<std::string, std::string> models;    // the models it names, and those they include
  std::map<std::string, std::string> datasets;  // the dataset entries it reads, and their files
  std::map<std::string, std::string> after;     // the stages it comes after: their keys
  std::string seed, version,
      options;  // the pipeline's seed, Loom's version, --subset and precision
  // Plugin libraries from outside Loom's own plugin folder: file name -> content fingerprint
  // (a rebuilt plugin is new code, as a new Loom version is).
  std::map<std::string, std::string> plugins;
  // How long it trains (epochs, --max-steps): a change continues the stage from its checkpoint.
  std::string length;
  // The fingerprint of everything but `length`.
  std::string key() const;
  // key() and length together: what the stages after this one depend on.
  std::string full_key() const;
};

struct StageRecord {
  StageInputs inputs;
  std::string finished;  // "2026-12-03 21:30:05 UTC"
  double seconds = -1;   // wall time of the stage's last run (-1: not recorded)
  std::string threads;   // the thread budget it ran with ("1 for oneDNN ..."; "": not recorded)
};

// The 64-bit FNV-1a hash of `text`, as 16 hex digits.
LOOM_API std::string fingerprint(const std::string& text);

// RUN/stages.json, stage -> record; empty when absent. A damaged file is an Error naming it.
LOOM_API std::map<std::string, StageRecord> read_stage_records(const std::string& run_dir);
// Writes RUN/stages.json atomically (removes it when `records` is empty).
LOOM_API void write_stage_records(const std::string& run_dir,
                                  const std::map<std::string, StageRecord>& records);

// How a stage's inputs differ from those recorded when it last finished: `why` in words ("its
// pipeline entry changed", "the seed changed (3 -> 4)", ...; "" when only `length`, or nothing,
// changed) and whether its checkpoints no longer fit them (`starts_over`: the seed, a dataset,
// --subset or a stage before it changed; a change of its own entry, its models or Loom's version
// continues from its checkpoint, as --resume always did).
struct StageChange {
  std::string why;
  bool starts_over = false;
};
LOOM_API StageChange what_changed(const StageInputs& now, const StageInputs& before);

// The current time as recorded ("2026-12-03 21:30:05 UTC").
LOOM_API std::string utc_now();

}  // namespace loom
