// Internal: the run folder of `loom run`. A folder that holds a run is never run into again by
// accident, and its pipeline.yaml records how the run was called, so that
// `loom run RUN/pipeline.yaml --out OTHER` repeats it.
#pragma once
#include <set>
#include <string>

#include "config/pipeline.hpp"
#include "loom/export.hpp"
#include "stage/runtime.hpp"

namespace loom {

class ModelSet;

// Loom's version ("0.1.0"), as recorded in run folders.
LOOM_API std::string loom_version();

// Refuses (Error naming the folder and the two ways out, --resume and --overwrite) a folder that
// already holds a run — a metrics.jsonl or a checkpoints/ folder — unless the options resume or
// overwrite it. Writes nothing.
LOOM_API void check_run_folder(const std::string& dir, const RunOptions& options);
// Creates the folder and takes its lock (.loom.lock, flock) for the life of the process, so that
// two runs never write one folder at once; Error if another process holds it.
LOOM_API void lock_run_folder(const std::string& dir);
// Whether a relative output path leaves the run folder (`..` first once normalised, or empty).
LOOM_API bool leaves_run_folder(const std::string& rel);

// A pipeline written into a run folder carries a `loom_run:` block with the command-line options
// of that run; those the command line leaves unset (epochs, subset, max_steps) are taken from it.
// A malformed block is an Error located in the file.
LOOM_API void apply_recorded_options(const PipelineFile& file, RunOptions& options);

// Readies the folder once the pipeline is valid and its data loaded, in this order: on --resume,
// checks that the last checkpoint of every stage not `restarted` still fits the models (an Error
// names the first tensor whose shape changed, and the folder stays untouched), removes the
// checkpoints and metrics lines of the `restarted` stages and keeps every line of the `reused`
// ones; on --overwrite, removes the previous run's metrics.jsonl, checkpoints/,
// weights.safetensors and stages.json; then writes pipeline.yaml
// (temporary file + rename): the pipeline as run, overrides applied, relative data files and
// plugin folders made absolute, and the `loom_run:` block (Loom version, the original pipeline,
// --epochs, --subset, --max-steps and every --set given so far).
LOOM_API void start_run_folder(const std::string& dir, const PipelineFile& file,
                               const RunOptions& options, ModelSet& models,
                               const std::set<std::string>& reused = {},
                               const std::set<std::string>& restarted = {});

}  // namespace loom
