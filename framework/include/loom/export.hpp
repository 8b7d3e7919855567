// Symbol visibility for the core library. Plugins are built with hidden visibility; everything
// that crosses the plugin boundary (interfaces, the error type) is exported from libloom.
#pragma once
#define LOOM_API __attribute__((visibility("default")))
