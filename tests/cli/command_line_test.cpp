// The loom command line: every command's --help, --version, option values checked as they are
// parsed (exit code 2), --set overrides that name nothing, bash completion, and the warning when
// the cores are already busy.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "config/overrides.hpp"
#include "loom/error.hpp"
#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

std::string stacked() { return source_path("pipelines/stacked_ae.yaml"); }

// Every option of every command, as users call them; --help must list and document each.
const std::map<std::string, std::vector<std::string>>& options_by_command() {
  static const std::map<std::string, std::vector<std::string>> all{
      {"run",
       {"--out", "--set", "--precision", "--epochs", "--max-steps", "--subset", "--threads",
        "--resume", "--rerun", "--overwrite", "--quiet"}},
      {"validate", {"--set", "--precision"}},
      {"plugins", {}},
      {"bench",
       {"--set", "--precision", "--stage", "--warmup", "--windows", "--steps", "--threads",
        "--json", "--augment", "--images", "--sample", "--layouts"}},
      {"predict",
       {"--input", "--out", "--model", "--output", "--range", "--scatter", "--round",
        "--batch-size", "--threads"}},
      {"sample",
       {"--out",         "--n",       "--model",      "--sampler",     "--seed",    "--cols",
        "--interpolate", "--axis",    "--between",    "--data",        "--encoder", "--steps",
        "--batch-size",  "--threads", "--class",      "--num-classes", "--no-ema",  "--guidance",
        "--eta",         "--spacing", "--trajectory", "--no-clip"}},
      {"augment",
       {"--out", "--transform", "--copies", "--keep-originals", "--seed", "--subset", "--threads",
        "--preview", "--quiet"}},
      {"graph", {"--set", "--precision"}},
      {"completion", {"--out"}},
      {"eval",
       {"--real", "--n", "--labels", "--range", "--classifier", "--classes", "--seed", "--json",
        "--threads"}},
  };
  return all;
}

// The help line of `option`: "  --epochs N    doc (default: ...)".
std::string help_line(const std::string& help, const std::string& option) {
  std::regex line("\\n  " + option + "[ =][^\\n]*");
  std::smatch m;
  return std::regex_search(help, m, line) ? m.str().substr(1) : "";
}

class CommandHelp : public ::testing::TestWithParam<std::string> {};

TEST_P(CommandHelp, ListsEveryOptionWithDocAndDefault) {
  std::string cmd = GetParam();
  CliResult r = run_loom({cmd, "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Usage: loom " + cmd), std::string::npos) << r.out;
  for (const std::string& option : options_by_command().at(cmd)) {
    std::string line = help_line(r.out, option);
    ASSERT_FALSE(line.empty()) << "`loom " << cmd << " --help` does not list " << option << ":\n"
                               << r.out;
    // The option, its value name (if any), then at least a few words of doc.
    std::regex documented("  " + option + "( [A-Z_.,=]+( \\.\\.\\.)?)? +[a-zA-Z\"(].{10,}");
    EXPECT_TRUE(std::regex_search(line, documented)) << line;
    bool takes_value = std::regex_search(line, std::regex("^  " + option + " [A-Z]"));
    bool required_or_free = line.find("(required)") != std::string::npos || option == "--set" ||
                            option == "--between" || option == "--data" || option == "--scatter";
    if (takes_value && !required_or_free) {
      EXPECT_NE(line.find("(default: "), std::string::npos) << "no default shown: " << line;
    }
  }
  // And nothing it does not accept: every listed --option is one of the above (or --help).
  std::regex listed("\\n  (--[a-z-]+)");
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), listed);
       it != std::sregex_iterator(); ++it) {
    std::string o = (*it)[1];
    auto& known = options_by_command().at(cmd);
    EXPECT_TRUE(o == "--help" || std::find(known.begin(), known.end(), o) != known.end())
        << cmd << " lists " << o;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCommand, CommandHelp,
                         ::testing::Values("run", "validate", "plugins", "bench", "predict",
                                           "sample", "augment", "graph", "completion", "eval"));

TEST(CommandLine, TopLevelHelpListsEveryCommand) {
  CliResult r = run_loom({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (auto& [cmd, options] : options_by_command())
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\\n  " + cmd + " +[a-z]"))) << cmd << r.out;
  EXPECT_NE(r.out.find("--version"), std::string::npos);
  CliResult help_run = run_loom({"help", "run"});
  EXPECT_EQ(help_run.exit_code, 0);
  EXPECT_NE(help_run.out.find("--max-steps"), std::string::npos) << help_run.out;
  CliResult bare = run_loom({});
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_NE(bare.out.find("run"), std::string::npos);
}

TEST(CommandLine, VersionNamesLoomOneDnnIsaBf16AndBuild) {
  CliResult r = run_loom({"--version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("^loom [0-9]+\\.[0-9]+\\.[0-9]+\\n"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\noneDNN 2\\.[0-9]+\\.[0-9]+ \\(OpenMP")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\nISA in use: (avx|sse|avx2|avx512)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\nbf16: (yes|no) \\("))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\nbuild: [A-Za-z]+"))) << r.out;
}

TEST(CommandLine, BadOptionValuesNameTheOptionAndExitWith2) {
  std::string out = temp_dir("values") + "/run";
  std::string p = stacked();
  std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"run", p, "--out", out, "--epochs", "x"}, "--epochs: expected a positive integer, got 'x'"},
      {{"run", p, "--out", out, "--epochs", "0"}, "--epochs: expected a positive integer, got '0'"},
      {{"run", p, "--out", out, "--subset", "-3"}, "--subset: expected a positive integer"},
      {{"run", p, "--out", out, "--max-steps=1.5"}, "--max-steps: expected a positive integer"},
      {{"run", p, "--out", out, "--threads", "many"},
       "--threads: expected an integer, 0 or more, got 'many'"},
      {{"run", p, "--out", out, "--set", "epochs"}, "--set: expected key.path=value"},
      {{"run", p, "--out", out, "--resume", "--overwrite"}, "--resume excludes --overwrite"},
      {{"run", p, "--out", out, "--rerun", "train", "--overwrite"}, "--rerun excludes --overwrite"},
      {{"run", p, "--out", out, "--epoch", "2"}, "unknown option --epoch (did you mean 'epochs'?)"},
      {{"run", p, "--out", out, "--epochs", "2", "--epochs", "x"}, "--epochs: expected a positive"},
      {{"run"}, "PIPELINE is required"},
      {{"run", p, p}, "unexpected argument"},
      {{"bench", p, "--windows", "0"}, "--windows: expected a positive integer"},
      {{"bench"}, "loom bench needs a PIPELINE"},
      {{"sample", "r", "--out", "x.png", "--between", "3"},
       "--between: expected two sample indices I,J (e.g. 3,17), got '3'"},
      {{"sample", "r", "--out", "x.png", "--n", "many"}, "--n: expected a positive integer"},
      {{"predict", "r", "--input", "i", "--out", "o.npy", "--range", "0;1"},
       "--range: expected LOW,HIGH"},
      {{"predict", "r", "--out", "o.npy"}, "--input is required"},
      {{"augment", "in.npy", "--out", "o.npy", "--copies", "two"},
       "--copies: expected an integer, 0 or more, got 'two'"},
      {{"completion", "fish"}, "SHELL: expected bash"},
      {{"--verison"}, "unknown option --verison (did you mean 'version'?)"},
  };
  for (auto& [args, message] : cases) {
    CliResult r = run_loom(args);
    std::string shown;
    for (auto& a : args) shown += " " + a;
    EXPECT_EQ(r.exit_code, 2) << "loom" << shown << "\n" << r.err;
    EXPECT_NE(r.err.find("error: " + message), std::string::npos)
        << "loom" << shown << ": expected '" << message << "' in\n"
        << r.err;
    EXPECT_NE(r.err.find("--help` lists the"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(out));
}

TEST(CommandLine, SetTypoIsAnErrorWithTheClosestKey) {
  std::string out = temp_dir("set-typo") + "/run";
  CliResult r = run_loom({"run", stacked(), "--out", out, "--set", "stages.trian.epochs=3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: --set stages.trian.epochs=3: the pipeline has no stage 'trian' "
                       "(did you mean 'stages.train'?)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(out)) << "nothing is written";
  r = run_loom({"validate", stacked(), "--set", "datasets.fashon.scale=[0, 2]"});
  EXPECT_NE(r.err.find("no dataset 'fashon' (did you mean 'datasets.fashion'?)"), std::string::npos)
      << r.err;
  r = run_loom({"validate", stacked(), "--set", "stage.train.epochs=3"});
  EXPECT_NE(r.err.find("the pipeline has no 'stage' section (did you mean 'stages'?)"),
            std::string::npos)
      << r.err;
  // A misspelt parameter of an existing stage is caught by the stage's declaration.
  r = run_loom({"validate", stacked(), "--set", "stages.train.epoch=3"});
  EXPECT_NE(r.err.find("stages.train.epoch: unknown key 'epoch' (did you mean 'epochs'?)"),
            std::string::npos)
      << r.err;
  // A value an override gave is located at the override, not at a line of the file, and an
  // error about a value of the file still names its line.
  r = run_loom({"validate", stacked(), "--set", "stages.train.epoch=3"});
  EXPECT_NE(r.err.find("error: --set 'stages.train.epoch=3': stages.train.epoch:"),
            std::string::npos)
      << r.err;
  r = run_loom({"validate", stacked(), "--set", "stages.train.epochs=2", "--set",
                "stages.train.optimizer={type: sgd, lr: -1}"});
  EXPECT_NE(r.err.find("error: --set 'stages.train.optimizer={type: sgd, lr: -1}': "
                       "stages.train.optimizer.lr: must be >= 0, got -1"),
            std::string::npos)
      << r.err;
  r = run_loom(
      {"validate", stacked(), "--set", "models.encoder.layers[1]={type: dense, units: 0}"});
  EXPECT_NE(r.err.find("error: --set 'models.encoder.layers[1]={type: dense, units: 0}': "
                       "models.encoder.layers[1].units: must be >= 1, got 0"),
            std::string::npos)
      << r.err;
  std::string bad = temp_dir("set-located") + "/bad.yaml";
  {
    std::ifstream in(stacked());
    std::stringstream text;
    text << in.rdbuf();
    std::string t = text.str();
    size_t at = t.find("epochs: 20");
    ASSERT_NE(at, std::string::npos);
    std::ofstream(bad) << t.replace(at, 10, "epochs: -3");
  }
  r = run_loom({"validate", bad, "--set", "stages.train.batch_size=8"});
  EXPECT_NE(r.err.find(bad + ":32:13: stages.train.epochs: must be >= 1"), std::string::npos)
      << r.err;
  // A correct override still works, including a parameter the file leaves to its default.
  r = run_loom({"validate", stacked(), "--set", "stages.train.epochs=3", "--set",
                "stages.train.clip_norm=1.0", "--set", "models.encoder.layers[1].units=64"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(Overrides, ReplaceOrAddButNeverCreateEntries) {
  YAML::Node root = YAML::Load(
      "stages: {train: {recipe: autoencoder, epochs: 20}}\n"
      "models: {m: {layers: [{type: dense, units: 3}, {type: relu}]}}\nseed: 1\n");
  loom::apply_override(root, "stages.train.epochs=3");
  EXPECT_EQ(root["stages"]["train"]["epochs"].as<int>(), 3);
  loom::apply_override(root, "stages.train.optimizer={type: adam, lr: 3e-4}");
  EXPECT_EQ(root["stages"]["train"]["optimizer"]["type"].Scalar(), "adam");
  loom::apply_override(root, "stages.train.optimizer.lr=1e-3");
  EXPECT_EQ(root["stages"]["train"]["optimizer"]["lr"].Scalar(), "1e-3");
  loom::apply_override(root, "models.m.layers[0].units=7");
  EXPECT_EQ(root["models"]["m"]["layers"][0]["units"].as<int>(), 7);
  loom::apply_override(root, "models.m.layers[1]={type: tanh}");
  EXPECT_EQ(root["models"]["m"]["layers"][1]["type"].Scalar(), "tanh");
  loom::apply_override(root, "name=renamed");
  EXPECT_EQ(root["name"].Scalar(), "renamed");
  auto message = [&](const std::string& text) {
    try {
      loom::apply_override(root, text);
    } catch (const loom::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("stages.trian.epochs=3"),
            "--set stages.trian.epochs=3: the pipeline has no stage 'trian' (did you mean "
            "'stages.train'?)");
  EXPECT_EQ(message("stages.extra={recipe: predict}"),
            "--set stages.extra={recipe: predict}: the pipeline has no stage 'extra' (known: "
            "train)");
  EXPECT_NE(message("models.n.layers[0].units=1").find("no model 'n' (did you mean 'models.m'"),
            std::string::npos);
  EXPECT_NE(message("datasets.d.x=1").find("the pipeline has no 'datasets' section"),
            std::string::npos);
  EXPECT_NE(message("models.m.layers[2].units=1").find("has no element 2 (it has 2"),
            std::string::npos);
  EXPECT_NE(message("models.m.layers[one].units=1").find("a list index is a number"),
            std::string::npos);
  EXPECT_NE(message("seed.x=1").find("'seed' is a single value"), std::string::npos);
  EXPECT_NE(message("stages.train.epochs"), "no error");
  EXPECT_NE(message("stages..epochs=1").find("empty key"), std::string::npos);
  EXPECT_NE(message("stages.train.epochs=[1").find("is not valid YAML"), std::string::npos);
  EXPECT_NE(message("stages.train.loss=&s [*s]").find("an alias used inside its own anchor"),
            std::string::npos);
  EXPECT_FALSE(root["stages"]["trian"]) << "a failed override leaves no trace";
  EXPECT_FALSE(root["stages"]["extra"]);
  EXPECT_FALSE(root["datasets"]);
}

std::string completion_script() {
  CliResult r = run_loom({"completion", "bash"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// Runs the completion function as bash would for the command line `words` (the last one being
// completed) and returns the candidates.
std::string complete(const std::string& script_path, const std::string& words) {
  std::string dir = temp_dir("complete");
  std::ofstream(dir + "/t.sh") << "source '" << script_path << "'\nCOMP_WORDS=(" << words
                               << ")\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                               << "[[ \"" << words << "\" == *' ' ]] && COMP_WORDS+=('') && "
                               << "COMP_CWORD=$((COMP_CWORD + 1))\n_loom\n"
                               << "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
  std::string out = dir + "/out";
  std::string cmd = "cd " + dir + " && mkdir -p runs/demo && PATH=" + LOOM_BINARY_DIR +
                    "/bin:$PATH bash t.sh > out 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::string got = read_text(out);
  fs::remove_all(dir);
  return got;
}

TEST(Completion, BashScriptCompletesCommandsOptionsAndValues) {
  std::string script = completion_script();
  EXPECT_NE(script.find("complete -F _loom loom"), std::string::npos);
  std::string dir = temp_dir("completion");
  std::string path = dir + "/loom";
  std::ofstream(path) << script;
  ASSERT_EQ(std::system(("bash -n " + path).c_str()), 0) << "not valid bash";
  EXPECT_EQ(complete(path, "loom ru"), "run\n");
  EXPECT_EQ(complete(path, "loom --vers"), "--version\n");
  EXPECT_EQ(complete(path, "loom run p.yaml --ep"), "--epochs\n");
  EXPECT_EQ(complete(path, "loom run p.yaml --max"), "--max-steps\n");
  std::string sample = complete(path, "loom sample runs/demo --");
  for (auto& o : options_by_command().at("sample"))
    EXPECT_NE(sample.find(o + "\n"), std::string::npos) << o << " not offered:\n" << sample;
  EXPECT_EQ(complete(path, "loom run p.yaml --out runs/d"), "runs/demo\n");  // folders
  EXPECT_EQ(complete(path, "loom run p.yaml --epochs "), "\n");              // a number: nothing
  EXPECT_NE(complete(path, "loom plugins den").find("dense\n"), std::string::npos);
  EXPECT_EQ(complete(path, "loom completion b"), "bash\n");
  // The build leaves the same script where `cmake --install` takes it from ...
  EXPECT_EQ(read_text(std::string(LOOM_BINARY_DIR) + "/share/bash-completion/completions/loom"),
            script);
  // ... and installs it where bash-completion looks.
  std::string prefix = dir + "/prefix";
  std::string install = "cmake --install " + std::string(LOOM_BINARY_DIR) + " --prefix " + prefix +
                        " > " + dir + "/install.log 2>&1";
  ASSERT_EQ(std::system(install.c_str()), 0) << read_text(dir + "/install.log");
  EXPECT_EQ(read_text(prefix + "/share/bash-completion/completions/loom"), script);
  fs::remove_all(dir);
}

TEST(ThreadBudget, WarnsOnceWhenTheCoresAreBusy) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "one core: one thread, no warning";
  std::string dir = temp_dir("busy");
  auto run = [&](const std::string& env, const std::vector<std::string>& extra) {
    static int n = 0;
    std::vector<std::string> args{
        "run",         stacked(), "--out",  dir + "/" + std::to_string(n++), "--subset", "64",
        "--max-steps", "1",       "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = run_loom(args, env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.err;
  };
  const std::string busy = "OMP_WAIT_POLICY=ACTIVE LOOM_LOAD_AVERAGE=1000";
  std::string err = run(busy, {});
  EXPECT_NE(err.find("warning: other programs keep about 1000.0 of the"), std::string::npos) << err;
  EXPECT_NE(err.find("consider --threads 1"), std::string::npos) << err;
  EXPECT_EQ(err.find("warning:"), err.rfind("warning:")) << "one warning: " << err;
  // Not when the user chose the budget, nor when the cores are idle, nor when threads sleep.
  EXPECT_EQ(run(busy, {"--threads", "1"}).find("warning:"), std::string::npos);
  EXPECT_EQ(run(busy, {"--threads", "2"}).find("warning:"), std::string::npos);
  EXPECT_EQ(run("OMP_WAIT_POLICY=ACTIVE LOOM_LOAD_AVERAGE=0", {}).find("warning:"),
            std::string::npos);
  EXPECT_EQ(run("OMP_WAIT_POLICY=PASSIVE LOOM_LOAD_AVERAGE=1000", {}).find("warning:"),
            std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
