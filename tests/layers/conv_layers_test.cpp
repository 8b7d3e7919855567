// Finite-difference gradient checks and shape checks of the convolutional layers.
#include <gtest/gtest.h>

#include "support/harness.hpp"

using loom::test::check_layer_gradients;
using loom::test::GradCheck;

TEST(ConvLayerGradients, Conv2DValid) {
  check_layer_gradients("[2, 5, 7]", "{type: conv2d, filters: 3, kernel_size: [3]}", 3);
}
TEST(ConvLayerGradients, Conv2DSameStride2) {
  check_layer_gradients("[2, 5, 7]",
                        "{type: conv2d, filters: 3, kernel_size: [3, 2], strides: [2], "
                        "padding: same, activation: tanh}",
                        1);
}
