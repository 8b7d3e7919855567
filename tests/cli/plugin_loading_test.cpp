// Plugin loading: a plugin built as its own library and loaded by path adds a layer usable from
// YAML; an ABI mismatch, a duplicate name and a library without a manifest each give a clear
// error naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "loom/create.hpp"
#include "loom/dataset_io.hpp"
#include "loom/plugin.hpp"
#include "plugin/plugins.hpp"
#include "support/cli.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

std::string plugin(const std::string& name) {
  return std::string(LOOM_TEST_PLUGIN_DIR) + "/lib" + name + ".so";
}

std::string load_error(loom::Registry& r, const std::string& path) {
  try {
    loom::load_plugin(r, path);
  } catch (const loom::Error& e) {
    return e.what();
  }
  return "";
}

TEST(PluginLoading, AbiMismatchIsRefused) {
  loom::Registry r;
  std::string msg = load_error(r, plugin("test_abi_mismatch"));
  EXPECT_NE(msg.find(plugin("test_abi_mismatch")), std::string::npos) << msg;
  EXPECT_NE(msg.find("plugin ABI version mismatch: this Loom expects version " +
                     std::to_string(loom::kAbiVersion) + ", the library was built for version 999"),
            std::string::npos)
      << msg;
  EXPECT_TRUE(r.all().empty());
}

TEST(PluginLoading, MissingSymbolIsNamedDemangled) {
  loom::Registry r;
  std::string msg = load_error(r, plugin("test_missing_symbol"));
  EXPECT_NE(msg.find(plugin("test_missing_symbol") + ": cannot load plugin library: "),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("undefined symbol: loom::function_that_no_library_defines(int)"),
            std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("Bad file descriptor"), std::string::npos) << msg;
  EXPECT_TRUE(r.all().empty());
}

TEST(PluginLoading, DuplicateNameNamesBothLibraries) {
  loom::Registry r;
  loom::load_plugin_dir(r, loom::builtin_plugin_dir());
  std::string msg = load_error(r, plugin("test_duplicate_dense"));
  EXPECT_NE(msg.find("layer 'dense' is registered twice: by "), std::string::npos) << msg;
  EXPECT_NE(msg.find("libloom_layers_core.so"), std::string::npos) << msg;
  EXPECT_NE(msg.find("libtest_duplicate_dense.so"), std::string::npos) << msg;
}

TEST(PluginLoading, NotAPluginAndMissingFile) {
  loom::Registry r;
  std::string msg = load_error(r, plugin("test_no_manifest"));
  EXPECT_NE(msg.find("not a Loom plugin (it exports no loom_plugin_manifest entry point)"),
            std::string::npos)
      << msg;
  msg = load_error(r, "/no/such/libplugin.so");
  EXPECT_NE(msg.find("/no/such/libplugin.so: plugin library not found"), std::string::npos) << msg;
  std::string dir = temp_dir("badlib");
  std::ofstream(dir + "/libbroken.so") << "not an ELF file";
  msg = load_error(r, dir + "/libbroken.so");
  EXPECT_NE(msg.find(dir + "/libbroken.so: cannot load plugin library: "), std::string::npos)
      << msg;
}

// A register function that throws something that is not an exception: a message naming the
// library, and nothing it registered before the throw is left pointing into unloaded code.
TEST(PluginLoading, RegistrationThatThrowsLeavesNothingBehind) {
  loom::Registry r;
  std::string msg = load_error(r, plugin("test_throws_int"));
  EXPECT_NE(msg.find(plugin("test_throws_int") +
                     ": registering its types failed (it threw something that is not an "
                     "exception)"),
            std::string::npos)
      << msg;
  EXPECT_EQ(r.find(loom::Kind::Layer, "half_registered"), nullptr);
  EXPECT_TRUE(r.all().empty());
}

// One broken library in a plugin folder is reported and skipped; the others load, and a type
// that cannot be found says which library was skipped and why.
TEST(PluginLoading, BrokenLibraryInAFolderIsSkipped) {
  std::string dir = temp_dir("plugdir");
  fs::copy_file(plugin("test_scale_layer"), dir + "/libgood.so");
  std::ofstream(dir + "/libbroken.so") << "not an ELF file";
  loom::Registry r;
  EXPECT_NO_THROW(loom::load_plugin_dir(r, dir));
  EXPECT_NE(r.find(loom::Kind::Layer, "scale_by"), nullptr);
  std::string msg;
  try {
    r.get(loom::Kind::Layer, "missing_layer");
  } catch (const loom::Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("unknown layer 'missing_layer'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(it may be in " + dir +
                     "/libbroken.so, which was skipped: cannot load "
                     "plugin library: "),
            std::string::npos)
      << msg;
}

TEST(PluginLoading, ThirdPartyLayerFromYaml) {
  loom::Registry r;
  loom::load_plugin_dir(r, loom::builtin_plugin_dir());
  loom::load_plugin(r, plugin("test_scale_layer"));
  ASSERT_NE(r.find(loom::Kind::Layer, "scale_by"), nullptr);
  EXPECT_NE(r.find(loom::Kind::Layer, "scale_by")->library.find("libtest_scale_layer.so"),
            std::string::npos);
}

std::string scale_pipeline(const std::string& dir, const std::string& plugins_line,
                           const std::string& scale_extra = "") {
  std::string p = dir + "/p.yaml";
  std::ofstream(p) << "name: scaled\n"
                   << plugins_line
                   << "datasets:\n  d: {source: oval}\nmodels:\n  m:\n    input: [3]\n    layers:\n"
                      "      - {type: dense, units: 3}\n      - {type: scale_by, factor: 0.5"
                   << scale_extra
                   << "}\n"
                      "stages:\n  train: {recipe: autoencoder, model: m, data: d, epochs: 3, "
                      "optimizer: {type: sgd, lr: 0.1}}\n";
  return p;
}

// An exception from a plugin's forward names the stage, the epoch and step, the model and the
// layer.
TEST(PluginLoading, ExceptionInALayerIsLocated) {
  std::string dir = temp_dir("plug-throw");
  CliResult r = run_loom(
      {"run",
       scale_pipeline(dir, "plugins: [" + plugin("test_scale_layer") + "]\n", ", fail_at: 3"),
       "--out", dir + "/run"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("stage 'train', epoch 2, step 3: model 'm', layer 'm.scale_by_1' "
                       "(scale_by), forward: scale_by: failing as asked"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
}

// A plugin library is part of what a finished stage was made with: --resume reuses the stage
// while the library's bytes are the same and trains it again once the library was rebuilt.
TEST(PluginLoading, ARebuiltPluginRunsItsStagesAgain) {
  std::string dir = temp_dir("plug-rebuilt");
  std::string lib = dir + "/libtest_scale_layer.so";
  fs::copy_file(plugin("test_scale_layer"), lib);
  std::string p = scale_pipeline(dir, "plugins: [" + lib + "]\n");
  std::vector<std::string> args{"run", p, "--out", dir + "/run", "--resume"};
  CliResult r = run_loom(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_loom(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stage train: reused (finished "), std::string::npos) << r.out;
  std::ofstream(lib, std::ios::app) << "rebuilt";  // other bytes, the same library to the loader
  r = run_loom(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stage train: runs (plugin library 'libtest_scale_layer.so' changed; "
                       "continuing from its checkpoint"),
            std::string::npos)
      << r.out;
}

TEST(PluginLoading, PipelinePluginsKeyAndSearchPath) {
  std::string dir = temp_dir("plug");
  // Named by the pipeline.
  CliResult r =
      run_loom({"run", scale_pipeline(dir, "plugins: [" + plugin("test_scale_layer") + "]\n"),
                "--out", dir + "/run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/run/metrics.jsonl"));
  // The run folder names the plugin; using the folder (predict) loads it only when allowed.
  loom::Dataset three;
  three.sample_shape = {3};
  three.count = 2;
  three.x = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  loom::write_dataset(dir + "/three.npy", three);
  std::vector<std::string> predict{"predict",          dir + "/run", "--input",
                                   dir + "/three.npy", "--out",      dir + "/out.npy"};
  r = run_loom(predict);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(dir +
                       "/run/pipeline.yaml names plugin libraries, which are native code "
                       "from whoever wrote this run folder; Loom loads them only when you "
                       "allow them: LOOM_PLUGIN_PATH=" +
                       plugin("test_scale_layer")),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out.npy"));
  r = run_loom(predict, "LOOM_PLUGIN_PATH=" + plugin("test_scale_layer"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/out.npy"));
  // Found on LOOM_PLUGIN_PATH.
  r = run_loom({"validate", scale_pipeline(dir, "")},
               "LOOM_PLUGIN_PATH=" + std::string(LOOM_TEST_PLUGIN_DIR) + "/libtest_scale_layer.so");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Not found otherwise — and never from the current folder.
  fs::copy_file(plugin("test_scale_layer"), dir + "/libtest_scale_layer.so");
  r = run_loom({"validate", "p.yaml"}, "cd " + dir + " &&");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown layer 'scale_by'"), std::string::npos) << r.err;
  // `loom plugins NAME` shows the declared parameters.
  r = run_loom({"plugins", "scale_by"}, "LOOM_PLUGIN_PATH=" + plugin("test_scale_layer"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("factor"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Multiplies its input by a constant."), std::string::npos) << r.out;
}

}  // namespace
