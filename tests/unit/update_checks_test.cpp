// What the server keeps of a client's reported numbers.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include <limits>

#include "src/server/update_checks.hpp"

TEST_CASE("non-finite metrics of a client are left out, finite ones kept", "[update_checks]") {
  lorafed::Metrics metrics = {{"train_loss", std::numeric_limits<double>::quiet_NaN()},
                              {"accuracy", 0.5},
                              {"fit_s", std::numeric_limits<double>::infinity()},
                              {"steps", 12}};
  const auto dropped = lorafed::drop_non_finite(metrics);
  CHECK(dropped == std::vector<std::string>{"fit_s", "train_loss"});
  CHECK(metrics == lorafed::Metrics{{"accuracy", 0.5}, {"steps", 12}});
}
