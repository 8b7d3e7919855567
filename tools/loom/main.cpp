// loom — run, validate, inspect and benchmark YAML pipelines.
#include <pmmintrin.h>
#include <sys/resource.h>
#include <unistd.h>
#include <xmmintrin.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "cli.hpp"
#include "core/distributed.hpp"
#include "loom/interrupt.hpp"

namespace {

// Help lists each option with its value, one line of doc, and its default (or "required").
class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter() { column_width(30); }
  std::string make_option_opts(const CLI::Option* o) const override {
    std::string s;
    if (o->get_type_size() != 0 && !o->get_type_name().empty()) s += " " + o->get_type_name();
    if (o->get_expected_max() == CLI::detail::expected_max_vector_size) s += " ...";
    return s;
  }
  std::string make_option_desc(const CLI::Option* o) const override {
    std::string d = o->get_description();
    if (o->get_required())
      d += " (required)";
    else if (o->get_type_size() != 0 && !o->get_default_str().empty())
      d += " (default: " + o->get_default_str() + ")";
    for (const CLI::Option* other : o->get_excludes()) d += " (not with " + other->get_name() + ")";
    return d;
  }
};

// "unknown option --epoch (did you mean 'epochs'?)" for the first word `cmd` did not expect.
std::string unexpected(const CLI::App& cmd, const std::vector<std::string>& extras) {
  for (const std::string& word : extras) {
    if (word.size() < 2 || word[0] != '-') continue;
    std::string name = word.substr(0, word.find('='));
    std::vector<std::string> known;
    for (const CLI::Option* o : cmd.get_options())
      if (!o->get_lnames().empty()) known.push_back(o->get_lnames()[0]);
    std::string bare = name.substr(name.find_first_not_of('-'));
    return "unknown option " + name + loom::suggestion(bare, known);
  }
  return "unexpected argument '" + (extras.empty() ? std::string() : extras[0]) + "'";
}

int usage_error(const CLI::App& app, const std::string& message) {
  std::string cmd = "loom";
  for (const CLI::App* sub : app.get_subcommands()) cmd += " " + sub->get_name();
  std::cerr << "error: " << message << "\n`" << cmd << " --help` lists the options\n";
  return 2;
}

}  // namespace

// What to say when an allocation failed: the address-space limit when one is set (ulimit -v),
// else the machine's memory.
static std::string out_of_memory_message() {
  struct rlimit lim {};
  std::string what = "out of memory";
  if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    return what + ": this process may use at most " + std::to_string(lim.rlim_cur >> 20) +
           " MiB of address space (ulimit -v " + std::to_string(lim.rlim_cur >> 10) +
           "), too little for this command; raise the limit, or lower batch_size or --threads";
  return what + ": the machine's memory ran out; lower batch_size or --threads, or free memory";
}

static int run_command(CLI::App& app, std::vector<char*>& args);

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) makes a write fail with EFBIG, reported with the file's path,
  // instead of killing the process mid-checkpoint.
  std::signal(SIGXFSZ, SIG_IGN);
  // oneDNN runs an OpenMP team inside each primitive, and a training step is a few dozen short
  // primitives: threads that go to sleep between them (PASSIVE) must be woken every time, which
  // measured 2-10x slower here than threads that wait actively (stacked_ae 20k vs 72k img/s,
  // recurrent_ae 0.5k vs 4.9k). The data stage is light, so loom waits actively unless the user
  // chose a policy. On a machine shared with other busy processes, `--threads 1` or
  // OMP_WAIT_POLICY=PASSIVE is the better choice (set_threads warns). The OpenMP runtime reads the
  // policy at start-up, hence the re-exec.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("LOOM_NO_REEXEC")) {
    setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
    setenv("LOOM_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);  // falls through if it fails
  }
  // Flush denormal floats to zero (threads created later inherit the mode): tiny gradients and
  // optimizer moments would otherwise hit the CPU's slow denormal path and cut the step rate.
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);

  CLI::App app("loom trains generative models from YAML pipelines.", "loom");
  app.formatter(std::make_shared<HelpFormatter>());
  app.set_version_flag("--version", std::function<std::string()>(loom::cli::version_text),
                       "print the versions of loom and oneDNN, the ISA in use, bf16, the build");
  app.require_subcommand(1);
  // An option given twice takes its last value (scripts append to a command line); --set
  // collects every value.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  loom::cli::add_run_command(app);
  loom::cli::add_validate_command(app);
  loom::cli::add_plugins_command(app);
  loom::cli::add_bench_command(app);
  loom::cli::add_predict_command(app);
  loom::cli::add_sample_command(app);
  loom::cli::add_augment_command(app);
  loom::cli::add_regenerate_command(app);
  loom::cli::add_graph_command(app);
  loom::cli::add_eval_command(app);
  loom::cli::add_report_command(app);
  loom::cli::add_plan_command(app);
  loom::cli::add_completion_command(app);
  app.footer("`loom COMMAND --help` lists a command's options and their defaults.");

  std::vector<std::string> commands;
  // No option or argument of any command means anything when empty (`--out ''` must not fall
  // back to the default folder).
  CLI::Validator non_empty(
      [](std::string& text) { return text.empty() ? std::string("expected a value, got ''") : ""; },
      "", "non-empty");
  for (CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(sub->get_name());
    for (CLI::Option* o :
         sub->get_options([](const CLI::Option* o) { return o->get_expected_min() > 0; }))
      o->check(non_empty);
  }
  std::vector<char*> args(argv, argv + argc);
  if (argc < 2) {
    std::cout << app.help();
    return 2;
  }
  std::string first = argv[1];
  if (first == "help") {  // `loom help` and `loom help COMMAND`
    static char help_flag[] = "--help";
    args.erase(args.begin() + 1);
    if (args.size() > 2) args.resize(2);
    args.push_back(help_flag);
  } else if (first[0] == '-' && first != "-h" && first != "--help" && first != "--version") {
    std::cerr << "error: unknown option " << first
              << loom::suggestion(first.substr(first.find_first_not_of('-')), {"help", "version"})
              << "\n`loom --help` lists the commands\n";
    return 2;
  } else if (first[0] != '-' &&
             std::find(commands.begin(), commands.end(), first) == commands.end()) {
    std::cerr << "error: unknown command '" << first << "'" << loom::suggestion(first, commands)
              << "\n`loom --help` lists the commands\n";
    return 2;
  }
  // Started by mpirun: join the other ranks (data-parallel training, sharded generation).
  try {
    loom::distributed::init(&argc, &argv);
  } catch (const loom::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  // Rank 0 speaks for every rank: the others' standard output goes nowhere (their errors and
  // warnings still reach standard error).
  if (loom::distributed::rank() != 0 && !std::freopen("/dev/null", "w", stdout))
    std::cerr << "warning: rank " << loom::distributed::rank() << " prints its output too\n";
  int code = run_command(app, args);
  loom::distributed::finalize();
  return code;
}

// Parses and runs the command; returns the exit code, having said why it failed. On several
// ranks, a failure stops them all: the failing rank says why (rank 0 first when every rank fails
// alike, e.g. on a mistake in the pipeline) and MPI ends the others.
static int run_command(CLI::App& app, std::vector<char*>& args) {
  auto fail = [](const std::string& text, int code, bool as_error = true) -> int {
    if (loom::distributed::world() == 1) {
      std::cerr << (as_error ? "\nerror: " : "\n") << text << "\n";
      return code;
    }
    if (loom::distributed::rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    std::cerr << (as_error ? "\nerror" : "\nstopped") << " (" << loom::distributed::where()
              << "): " << text << std::endl;
    loom::distributed::abort(code);
  };
  try {
    app.parse(int(args.size()), args.data());
    return 0;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what();
    return 0;
  } catch (const CLI::ExtrasError& e) {
    const CLI::App* where = &app;
    for (const CLI::App* sub : app.get_subcommands()) where = sub;
    return usage_error(app, unexpected(*where, where->remaining()));
  } catch (const CLI::ParseError& e) {
    return usage_error(app, e.what());
  } catch (const loom::cli::UsageError& e) {
    return usage_error(app, e.what());
  } catch (const loom::Interrupted& e) {
    return fail(e.what(), e.exit_code(), false);
  } catch (const loom::Error& e) {
    return fail(e.what(), 1);
  } catch (const std::bad_alloc&) {
    return fail(out_of_memory_message(), 1);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
}
