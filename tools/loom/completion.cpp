// `loom completion bash`: a bash completion script generated from the commands' own option
// declarations, so it never falls behind them. `cmake --install` puts it where bash-completion
// finds it (share/bash-completion/completions/loom).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "cli.hpp"
#include "loom/io.hpp"

namespace loom::cli {
namespace {

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

// How an option's value is completed, from the type name it shows in --help.
enum class Value { None, Dirs, Files };
Value value_kind(const CLI::Option* o) {
  std::string t = o->get_type_name();
  if (t == "DIR") return Value::Dirs;
  if (t == "PATH" || t == "FILE.png" || t == "YAML_OR_FILE") return Value::Files;
  return Value::None;
}

std::string bash_script(const CLI::App& app) {
  std::vector<std::string> commands;
  std::string cases;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(sub->get_name());
    std::vector<std::string> opts{"--help"}, dirs, files, other;
    for (const CLI::Option* o : sub->get_options()) {
      if (!o->nonpositional() || o->get_lnames().empty()) continue;
      std::string name = "--" + o->get_lnames()[0];
      if (name == "--help") continue;
      opts.push_back(name);
      if (o->get_type_size() == 0) continue;
      Value v = value_kind(o);
      (v == Value::Dirs ? dirs : v == Value::Files ? files : other).push_back(name);
    }
    std::string positional = sub->get_name() == "plugins"      ? "plugins"
                             : sub->get_name() == "completion" ? "shells"
                                                               : "files";
    cases += "    " + sub->get_name() + ")\n      opts=\"" + join(opts) + "\"\n      dirs=\"" +
             join(dirs) + "\"\n      files=\"" + join(files) + "\"\n      values=\"" + join(other) +
             "\"\n      positional=" + positional + "\n      ;;\n";
  }
  return R"SH(# bash completion for loom, written by `loom completion bash`.
_loom() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
  local cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      -*) ;;
      *) cmd="${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W ")SH" +
         join(commands) + R"SH( --help --version" -- "$cur"))
    return 0
  fi
  local opts="" dirs="" files="" values="" positional=files
  case "$cmd" in
)SH" + cases +
         R"SH(    *) return 0 ;;
  esac
  if [[ " $dirs " == *" $prev "* ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -d -- "$cur"))
    return 0
  fi
  if [[ " $files " == *" $prev "* ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  [[ " $values " == *" $prev "* ]] && return 0
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ "$positional" == plugins ]]; then
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" plugins 2>/dev/null | sed -n '/^libraries:/q; /^  /p')" -- "$cur"))
  elif [[ "$positional" == shells ]]; then
    COMPREPLY=($(compgen -W "bash" -- "$cur"))
  else
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -F _loom loom
)SH";
}

}  // namespace

void add_completion_command(CLI::App& app) {
  struct Options {
    std::string shell, out;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "completion", "print a shell completion script (source <(loom completion bash))");
  cmd->add_option("SHELL", o->shell, "the shell")
      ->required()
      ->type_name("")
      ->check(CLI::Validator(
          [](std::string& shell) -> std::string {
            return shell == "bash" ? ""
                                   : "expected bash (the shell supported), got '" + shell + "'";
          },
          "", "shell"));
  cmd->add_option("--out", o->out, "write the script to this file instead of printing it")
      ->type_name("PATH")
      ->default_str("standard output");
  const CLI::App* root = &app;
  cmd->callback([o, root] {
    std::string script = bash_script(*root);
    if (o->out.empty()) {
      std::cout << script;
      return;
    }
    write_atomically(o->out, [&](const std::string& tmp) {
      std::ofstream f(tmp);
      f << script;
      if (!f.flush()) throw Error(o->out + ": cannot write the completion script");
    });
  });
}

}  // namespace loom::cli
