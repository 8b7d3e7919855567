// loom eval: the command line of the sample-quality measures (framework/src/eval).
#include "eval/eval.hpp"

#include <iostream>

#include "cli.hpp"
#include "loom/error.hpp"

namespace loom::cli {

int cmd_eval(int argc, char** argv) {
  Args a =
      parse(argc, argv, 2,
            {"real", "classifier", "classes", "labels", "range", "n", "threads", "seed"}, {"json"});
  if (a.positional.size() != 1)
    throw Error(
        "usage: loom eval SAMPLES [--real PATH] [--n N] [--labels PATH] [--range LOW,HIGH] "
        "[--classifier PATH] [--classes FILE] [--json] [--threads N]");
  eval::EvalOptions o;
  o.samples = a.positional[0];
  o.real = a.get("real");
  o.classifier = a.get("classifier");
  o.classes = a.get("classes");
  o.labels = a.get("labels");
  o.range = a.get("range");
  o.n = a.integer("n", o.n);
  o.seed = uint64_t(a.integer("seed", 0));
  set_threads(a.integer("threads", 0));
  eval::EvalReport r = eval::run(o);
  std::cout << (a.flag("json") ? eval::format_json(r) + "\n" : eval::format_text(r));
  return 0;
}

}  // namespace loom::cli
