// Labelled pictures: the text bands of image grids and the scatter plot's title, axes and legend
// (output/picture.cpp, output/scatter.cpp).
#include "output/picture.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "loom/io.hpp"
#include "loom/rng.hpp"
#include "output/scatter.hpp"
#include "support/cli.hpp"

namespace {

using loom::GridLabels;
using loom::GridLayout;
using loom::Picture;

// Six 28 x 28 images of random values in [0, 1] (gray, or RGB with rgb).
std::vector<float> random_images(int64_t n, int64_t channels) {
  std::vector<float> v(size_t(n * channels * 28 * 28));
  loom::Rng rng(7, "picture");
  for (auto& x : v) x = rng.uniform();
  return v;
}

std::vector<const float*> pointers(const std::vector<float>& v, int64_t n) {
  std::vector<const float*> p;
  for (int64_t i = 0; i < n; ++i) p.push_back(v.data() + size_t(i) * (v.size() / size_t(n)));
  return p;
}

// Dark pixels (any channel below 128) in [x0, x1) x [y0, y1).
int64_t ink(const Picture& p, int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
  int64_t n = 0;
  for (int64_t y = y0; y < y1; ++y)
    for (int64_t x = x0; x < x1; ++x) n += p.at(x, y)[0] < 128;
  return n;
}

// Whether the grid `g` sits, byte for byte, at (left, top) of `p`.
bool holds_grid(const Picture& p, const Picture& g, int64_t left, int64_t top) {
  if (p.channels != g.channels) return false;
  for (int64_t y = 0; y < g.height; ++y)
    if (std::memcmp(p.at(left, top + y), g.at(0, y), size_t(g.width * g.channels)) != 0)
      return false;
  return true;
}

TEST(LabelledGrid, RowLabelsWidenThePictureAndInkOnlyTheirRows) {
  auto v = random_images(6, 1);
  GridLayout L;
  Picture grid = loom::grid_picture(pointers(v, 6), {28, 28}, 3, 0.f, 1.f, &L);
  ASSERT_EQ(grid.width, 3 * 30 + 2);
  ASSERT_EQ(L.rows, 2);
  Picture p = loom::label_grid(grid, L, GridLabels{{"original", ""}, {}});
  int64_t left = p.width - grid.width;
  EXPECT_GT(left, 40) << "room for the word 'original'";
  EXPECT_EQ(p.height, grid.height) << "no header band without headers";
  EXPECT_TRUE(holds_grid(p, grid, left, 0)) << "the cells must stay the grid's bytes";
  // Ink beside row 0 (which has a label), none beside row 1 (blank label) or in the gaps.
  int64_t row0 = L.pad, row1 = L.pad + L.cell_h + L.pad;
  EXPECT_GT(ink(p, 0, row0, left, row0 + L.cell_h), 40);
  EXPECT_EQ(ink(p, 0, row1, left, row1 + L.cell_h), 0);
  EXPECT_EQ(ink(p, 0, 0, left, row0), 0);
  // The label ends a few pixels before the grid (right-aligned against it).
  EXPECT_GT(ink(p, left - 20, row0, left - 2, row0 + L.cell_h), 0);
  EXPECT_EQ(ink(p, left - 2, row0, left, row0 + L.cell_h), 0);
}

TEST(LabelledGrid, ColumnHeadersShortOrTurnedStayAboveTheirColumn) {
  auto v = random_images(3, 3);
  GridLayout L;
  Picture grid = loom::grid_picture(pointers(v, 3), {3, 28, 28}, 3, 0.f, 1.f, &L);
  ASSERT_EQ(grid.channels, 3);
  auto column_x = [&](int64_t c) { return L.pad + c * (L.cell_w + L.pad); };
  // Short headers: one line of text above the columns; column 1 has none.
  Picture p = loom::label_grid(grid, L, GridLabels{{}, {"a", "", "b"}});
  int64_t top = p.height - grid.height;
  EXPECT_EQ(p.width, grid.width);
  EXPECT_GT(top, 10);
  EXPECT_LT(top, 30);
  EXPECT_TRUE(holds_grid(p, grid, 0, top));
  EXPECT_GT(ink(p, column_x(0), 0, column_x(0) + L.cell_w, top), 5);
  EXPECT_EQ(ink(p, column_x(1), 0, column_x(1) + L.cell_w, top), 0);
  EXPECT_GT(ink(p, column_x(2), 0, column_x(2) + L.cell_w, top), 5);
  // The bands are gray on an RGB picture: text, not colour.
  for (int64_t y = 0; y < top; ++y)
    for (int64_t x = 0; x < p.width; ++x)
      ASSERT_TRUE(p.at(x, y)[0] == p.at(x, y)[1] && p.at(x, y)[1] == p.at(x, y)[2])
          << x << "," << y;
  // A header wider than its column is turned upright: a tall band, ink only over its column.
  Picture q = loom::label_grid(grid, L, GridLabels{{}, {"", "horizontal_flip", ""}});
  int64_t tall = q.height - grid.height;
  EXPECT_GT(tall, 60);
  EXPECT_TRUE(holds_grid(q, grid, 0, tall));
  EXPECT_GT(ink(q, column_x(1), 0, column_x(1) + L.cell_w, tall), 100);
  EXPECT_EQ(ink(q, 0, 0, column_x(1), tall), 0);
  EXPECT_EQ(ink(q, column_x(1) + L.cell_w, 0, q.width, tall), 0);
}

TEST(LabelledGrid, WrittenPngIsTheLabelledPicture) {
  std::string dir = loom::test::temp_dir("picture");
  auto v = random_images(4, 1);
  loom::write_png_grid(dir + "/plain.png", pointers(v, 4), {28, 28}, 2, 0.f, 1.f);
  loom::write_png_grid(dir + "/labelled.png", pointers(v, 4), {28, 28}, 2, 0.f, 1.f,
                       GridLabels{{"original", "reconstruction"}, {"x", "y"}});
  loom::Tensor plain = loom::read_png(dir + "/plain.png"),
               labelled = loom::read_png(dir + "/labelled.png");
  ASSERT_EQ(plain.shape(), loom::Shape({1, 2 * 30 + 2, 2 * 30 + 2}));
  int64_t H = labelled.dim(1), W = labelled.dim(2), left = W - plain.dim(2), top = H - plain.dim(1);
  EXPECT_GT(left, 60);
  EXPECT_GT(top, 10);
  for (int64_t y = 0; y < plain.dim(1); ++y)
    for (int64_t x = 0; x < plain.dim(2); ++x)
      ASSERT_EQ(labelled[(top + y) * W + left + x], plain[y * plain.dim(2) + x]) << x << "," << y;
  std::filesystem::remove_all(dir);
}

TEST(ClassNames, FashionMnistByPathElseNumbers) {
  auto names =
      loom::known_class_names("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[0], "T-shirt/top");
  EXPECT_EQ(names[9], "Ankle boot");
  EXPECT_TRUE(loom::known_class_names("/data/mnist/train-images-idx3-ubyte").empty());
  EXPECT_EQ(loom::class_name(3, names), "Dress");
  EXPECT_EQ(loom::class_name(12, names), "12");
  EXPECT_EQ(loom::class_name(3, {}), "3");
  // One name per row of 3 whose samples share a class; a mixed row stays blank.
  EXPECT_EQ(loom::class_row_labels({0, 0, 0, 1, 2, 1, 9, 9}, 3, names),
            (std::vector<std::string>{"T-shirt/top", "", "Ankle boot"}));
  EXPECT_TRUE(loom::class_row_labels({}, 3, names).empty());
}

TEST(ScatterPlot, TitleAxesTicksAndOneSwatchPerClass) {
  // Three classes in three clusters.
  std::vector<double> xy;
  std::vector<int32_t> labels;
  loom::Rng rng(3, "scatter");
  for (int i = 0; i < 300; ++i) {
    int k = i % 3;
    xy.push_back(k * 4 + rng.normal());
    xy.push_back(k * -2 + rng.normal());
    labels.push_back(k);
  }
  loom::ScatterText text{"codings", "principal component 1", "principal component 2",
                         loom::known_class_names("fashion-mnist")};
  std::vector<uint8_t> rgb = loom::render_scatter(xy, labels, text);
  loom::ScatterLayout L = loom::scatter_layout();
  ASSERT_EQ(int64_t(rgb.size()), L.width * L.height * 3);
  auto px = [&](int64_t x, int64_t y) { return &rgb[size_t((y * L.width + x) * 3)]; };
  auto dark = [&](int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
    int64_t n = 0;
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t x = x0; x < x1; ++x)
        n += px(x, y)[0] < 100 && px(x, y)[1] < 100 && px(x, y)[2] < 100;
    return n;
  };
  // The title band holds text.
  EXPECT_GT(dark(0, 0, L.width, L.title_band), 50);
  // The axes: the box's left and bottom edges are dark lines along the plot.
  int64_t left_edge = 0, bottom_edge = 0;
  for (int64_t i = 0; i < L.side; ++i) {
    left_edge += px(L.x0 - 1, L.y0 + i)[0] < 100;
    bottom_edge += px(L.x0 + i, L.y0 + L.side)[0] < 100;
  }
  EXPECT_EQ(left_edge, L.side);
  EXPECT_EQ(bottom_edge, L.side);
  // Tick values left of and below the plot.
  EXPECT_GT(dark(20, L.y0, L.x0 - 6, L.y0 + L.side), 30);
  EXPECT_GT(dark(L.x0, L.y0 + L.side + 7, L.x0 + L.side, L.y0 + L.side + 24), 30);
  // The legend: a swatch in each class's colour with its name beside it, then nothing.
  for (int32_t k = 0; k < 4; ++k) {
    int64_t y = L.y0 + k * L.legend_step;
    const uint8_t* s = px(L.legend_x + L.swatch / 2, y + L.swatch / 2);
    int64_t name_ink = dark(L.legend_x + L.swatch + 2, y, L.width, y + L.legend_step);
    if (k < 3) {
      const uint8_t* c = loom::scatter_colour(k);
      EXPECT_EQ((std::vector<int>{s[0], s[1], s[2]}), (std::vector<int>{c[0], c[1], c[2]})) << k;
      EXPECT_GT(name_ink, 10) << k;
    } else {
      EXPECT_EQ((std::vector<int>{s[0], s[1], s[2]}), (std::vector<int>{255, 255, 255}));
      EXPECT_EQ(name_ink, 0);
    }
  }
  // Points are drawn inside the plot in the class colours.
  int64_t coloured = 0;
  for (int64_t y = L.y0; y < L.y0 + L.side; ++y)
    for (int64_t x = L.x0; x < L.x0 + L.side; ++x)
      coloured += std::abs(int(px(x, y)[0]) - int(px(x, y)[2])) > 40;
  EXPECT_GT(coloured, 1000);
}

}  // namespace
