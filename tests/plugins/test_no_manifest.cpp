// A shared library that is not a Loom plugin (no manifest entry point).
extern "C" __attribute__((visibility("default"))) int not_a_plugin() { return 42; }
