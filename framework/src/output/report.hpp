// Internal: report.html, one self-contained page per run folder (inline SVG curves, embedded
// PNGs, no network, no external script or font): the pipeline as run, the machine, each stage's
// loss, accuracy, learning-rate and diversity curves, the grids of every epoch, the model
// summaries, and any stage that failed. Written at the end of every stage and by `loom report`.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "loom/export.hpp"

namespace loom {

struct LOOM_API ReportInput {
  std::string run_dir;
  std::vector<std::string> stages;  // in pipeline order (empty: those named in metrics.jsonl)
  std::map<std::string, std::string> recipes;  // stage -> recipe
  std::string summary;                         // the models' summaries ("" when unknown)
  std::string threads;  // the thread budget as `loom run` printed it ("": not recorded)
  std::map<std::string, std::string> running;  // stage -> "running" while a run goes on
  std::set<std::string> reused;  // stages not run again: their inputs were unchanged (--resume)
};

// Stage failures are kept in the run folder (failures.json: stage -> message, the last good
// checkpoint), so that `loom report` of an old run shows them too.
LOOM_API void record_stage_failure(const std::string& run_dir, const std::string& stage,
                                   const std::string& message);
LOOM_API void clear_stage_failure(const std::string& run_dir, const std::string& stage);

// Writes RUN_DIR/report.html (atomically) and returns its path.
LOOM_API std::string write_report(const ReportInput& in);

}  // namespace loom
