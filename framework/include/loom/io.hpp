// Dataset and image files: IDX (plain or .gz), NPY, PNG grids. Readers throw an Error naming
// the file and what is wrong with it; writers write a temporary file and rename it into place,
// so an interrupted write never leaves a half-written file under the final name.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "loom/export.hpp"
#include "loom/source.hpp"
#include "loom/tensor.hpp"

namespace loom {

// Reads IDX images (ubyte, any rank) and optional labels. Values stay in [0, 255].
LOOM_API Dataset read_idx(const std::string& images, const std::string& labels = "");
// Shape of the samples of an IDX image file, from its header alone.
LOOM_API Shape idx_sample_shape(const std::string& images);
// Image count (from the header) and classes (from the labels, "" for none; 0 classes).
LOOM_API SourceInfo idx_info(const std::string& images, const std::string& labels);
// Writes images (values mapped from [lo, hi] to 0..255) and labels as IDX ubyte files.
LOOM_API void write_idx(const std::string& images, const std::string& labels, const Dataset& d);

// NPY: float32 / float64 / uint8 / int32 / int64 arrays read as float; written as float32.
LOOM_API Tensor read_npy(const std::string& path);
// The array's shape, from the header alone.
LOOM_API Shape npy_shape(const std::string& path);
LOOM_API void write_npy(const std::string& path, const Tensor& t);
LOOM_API void write_npy_labels(const std::string& path, const std::vector<int32_t>& labels);

// Whether samples of this shape can be drawn: (H, W), (1, H, W) or (3, H, W).
inline bool is_image_shape(const Shape& s) {
  return s.size() == 2 || (s.size() == 3 && (s[0] == 1 || s[0] == 3));
}
// A grid of grayscale or RGB images (rows x cols, each (H, W) or (C, H, W) with values in
// [lo, hi]).
LOOM_API void write_png_grid(const std::string& path, const std::vector<const float*>& images,
                             const Shape& image_shape, int64_t cols, float lo, float hi);
// Text around a grid: a label at the left of each row ("original", "reconstruction", a class
// name), a header above each column (an augmenter's name, a time step). Either list may be empty
// (no band) or shorter than the grid (the rest blank).
struct GridLabels {
  std::vector<std::string> rows, columns;
  bool empty() const { return rows.empty() && columns.empty(); }
};
// The same grid inside white bands holding `labels` in dark text (drawn with Cairo); the image
// cells are byte for byte those of the unlabelled grid. An Error when no font can be loaded.
LOOM_API void write_png_grid(const std::string& path, const std::vector<const float*>& images,
                             const Shape& image_shape, int64_t cols, float lo, float hi,
                             const GridLabels& labels);
// The names of the classes of a dataset read from `origin` (a file path): Fashion-MNIST's ten
// ("T-shirt/top", "Trouser", ...) when the path names fashion-mnist, else none. The data stage
// gives them to a dataset that has no `class_names:` of its own (Dataset::class_names).
LOOM_API std::vector<std::string> known_class_names(const std::string& origin);
// `names[label]`, or the label as a number when there is no such name.
LOOM_API std::string class_name(int32_t label, const std::vector<std::string>& names);
// Row labels for a grid of `cols` columns whose samples have these classes: a row's class name
// when all its samples share one class, else blank; none at all when `labels` is empty.
LOOM_API std::vector<std::string> class_row_labels(const std::vector<int32_t>& labels, int64_t cols,
                                                   const std::vector<std::string>& names);
// A scatter plot of `values` (N, D) coloured by `labels` (empty, or N class indices): the values
// themselves when D is 2, else their projection on the first two principal components (PCA).
// An RGB PNG of scatter_png_size() pixels: a title (`subject` — what the values are, e.g.
// "encoder.mean of fashion.valid" — then how they are plotted), axes with tick values and names,
// the points, and a legend of one swatch per class named by `class_names` (numbers where a name
// is missing).
LOOM_API void write_scatter_png(const std::string& path, const Tensor& values,
                                const std::vector<int32_t>& labels,
                                const std::vector<std::string>& class_names = {},
                                const std::string& subject = "");
LOOM_API std::pair<int64_t, int64_t> scatter_png_size();  // (width, height)
// Encodes 8-bit pixels (H rows of W x c bytes; c = 1 gray, 3 RGB) into `file` directly (not
// atomically); level is the zlib compression level, -1 for the default. `name` is the path shown
// in errors (default: file).
LOOM_API void encode_png(const std::string& file, const unsigned char* pixels, int64_t W, int64_t H,
                         int64_t c, int level = -1, const std::string& name = "");
// Reads a PNG as (C, H, W) floats in [0, 255].
LOOM_API Tensor read_png(const std::string& path);

// Removes what a killed process left of its writes of `path`: the temporary files (or folders)
// `path`.tmp.<pid>[.<n>] whose process no longer exists. Called before each new write of `path`.
LOOM_API void remove_stale_temps(const std::string& path);

// "PATH: cannot write (No space left on device)": the message of a failed write, with errno's
// reason (a full disk, a file-size limit, a folder made read-only).
LOOM_API std::string write_failed(const std::string& path);

// Writes through `write(tmp_path)` then renames over `path` (same folder).
LOOM_API void write_atomically(const std::string& path,
                               const std::function<void(const std::string& tmp)>& write);

}  // namespace loom
