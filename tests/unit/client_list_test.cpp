#include <catch2/catch.hpp>

#include "lorafed/error.hpp"
#include "src/client/client_list.hpp"

using lorafed::parse_client_list;
using Indices = std::vector<std::int64_t>;

TEST_CASE("a client list (--clients) takes indices and inclusive ranges, in increasing order") {
  CHECK(parse_client_list("0-3", 10) == Indices{0, 1, 2, 3});
  CHECK(parse_client_list("7", 10) == Indices{7});
  CHECK(parse_client_list("9,0,3-4", 10) == Indices{0, 3, 4, 9});
  CHECK(parse_client_list("0-9999", 10000).size() == 10000);
}

TEST_CASE("a client list (--clients) refuses what names no client or one client twice") {
  auto message = [](const std::string& text) {
    try {
      parse_client_list(text, 10);
    } catch (const lorafed::ConfigError& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(message("10"), Catch::Contains("outside 0..9"));
  CHECK_THAT(message("5-12"), Catch::Contains("12 is outside 0..9"));
  CHECK_THAT(message("4-2"), Catch::Contains("runs backwards"));
  CHECK_THAT(message("1,2-3,3"), Catch::Contains("client 3 is named twice"));
  for (const char* text : {"", "a", "1,", ",1", "-1", "1-", "1-2-3", "1 ", "0x1", "2,,3"}) {
    INFO(text);
    CHECK_THAT(message(text), Catch::Contains("is not an index or a range"));
  }
}
