// Internal: 2-D views of codings — principal component analysis (covariance and a Jacobi
// eigen-decomposition, in double) and the scatter-plot renderer behind write_scatter_png().
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "loom/export.hpp"
#include "loom/io.hpp"
#include "loom/tensor.hpp"

namespace loom {

// Eigen-decomposition of a symmetric d x d matrix (row-major): eigenvalues in descending order,
// eigenvectors as the rows of `vectors` (d x d, unit length, sign fixed so that the largest
// component is positive).
struct LOOM_API Eigen {
  std::vector<double> values;
  std::vector<double> vectors;
};
LOOM_API Eigen symmetric_eigen(std::vector<double> a, int64_t d);

// Principal components of rows x (n x d, row-major): the mean, and the eigen-decomposition of
// the covariance (divided by n).
struct LOOM_API Pca {
  int64_t dim = 0;
  std::vector<double> mean;
  Eigen eigen;
};
LOOM_API Pca fit_pca(const float* x, int64_t n, int64_t d);
// Coordinates of the rows on the first `k` components (n x k, row-major).
LOOM_API std::vector<double> project(const Pca& pca, const float* x, int64_t n, int64_t k);

// The 2-D points of `values` (N, D): the values when D is 2, (v, 0) when D is 1, else PCA.
LOOM_API std::vector<double> scatter_points(const Tensor& values);

// Where a scatter plot's parts lie (pixels): a title band at the top, the square plot area
// (x0, y0, side) with tick values left of and below it, and the legend right of it: one swatch
// (swatch x swatch) per class at (legend_x, y0 + k * legend_step).
struct LOOM_API ScatterLayout {
  int64_t width, height, title_band, x0, y0, side, legend_x, legend_step, swatch;
};
LOOM_API ScatterLayout scatter_layout();
// The colour of class k's points and swatch (ten colours, repeating).
LOOM_API const uint8_t* scatter_colour(int32_t k);

// What a scatter plot says besides its points.
struct ScatterText {
  std::string title, x_axis, y_axis;
  std::vector<std::string> class_names;  // missing names are shown as numbers
};

// Renders points (n x 2) coloured by labels into an RGB raster of scatter_layout()'s size
// (width x height x 3), with Cairo: title, axes with tick values and names, points, legend.
LOOM_API std::vector<uint8_t> render_scatter(const std::vector<double>& xy,
                                             const std::vector<int32_t>& labels,
                                             const ScatterText& text);
// Writes an 8-bit RGB PNG (atomically).
LOOM_API void write_png_rgb(const std::string& path, const std::vector<uint8_t>& rgb, int64_t width,
                            int64_t height);

}  // namespace loom
