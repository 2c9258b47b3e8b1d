#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"

using Catch::Matchers::Contains;

namespace {

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("lorafed-test-" + name);
}

// Writes a safetensors file byte by byte, as the format's specification says.
void write_raw(const std::filesystem::path& path, const std::string& header,
               const std::vector<char>& data) {
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((size >> (8 * i)) & 0xff));
  out << header;
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace

TEST_CASE("tensors and metadata survive a round trip", "[safetensors]") {
  const auto path = temp_file("roundtrip.safetensors");
  lorafed::NamedTensors tensors = {
      {"layer.lora_A", at::randn({3, 5})},
      {"layer.lora_B", at::randn({4, 3}).to(at::kBFloat16)},
      {"steps", at::arange(6, at::kLong).reshape({2, 3})},
      {"empty", at::zeros({0, 4})},
  };
  lorafed::save_safetensors(path, tensors, {{"format", "pt"}});
  const lorafed::SafetensorsFile loaded = lorafed::load_safetensors(path);
  REQUIRE(loaded.tensors.size() == tensors.size());
  for (const auto& [name, tensor] : tensors) {
    INFO(name);
    CHECK(loaded.tensors.at(name).scalar_type() == tensor.scalar_type());
    CHECK(at::equal(loaded.tensors.at(name), tensor));
  }
  CHECK(loaded.metadata.at("format") == "pt");
  std::filesystem::remove(path);
}

TEST_CASE("the written header follows the safetensors layout", "[safetensors]") {
  const auto path = temp_file("layout.safetensors");
  lorafed::save_safetensors(path, {{"a", at::ones({2, 2})}, {"b", at::ones({3}, at::kHalf)}});
  std::ifstream in(path, std::ios::binary);
  unsigned char length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | length_bytes[i];
  std::string header(length, '\0');
  in.read(header.data(), static_cast<std::streamsize>(length));
  const auto json = nlohmann::json::parse(header);
  CHECK(json["a"]["dtype"] == "F32");
  CHECK(json["a"]["shape"] == nlohmann::json::array({2, 2}));
  CHECK(json["a"]["data_offsets"] == nlohmann::json::array({0, 16}));
  CHECK(json["b"]["dtype"] == "F16");
  CHECK(json["b"]["data_offsets"] == nlohmann::json::array({16, 22}));
  CHECK((8 + length) % 8 == 0);
  std::filesystem::remove(path);
}

TEST_CASE("a file written by hand to the specification loads", "[safetensors]") {
  const auto path = temp_file("manual.safetensors");
  const float values[] = {1.5f, -2.0f};
  std::vector<char> data(reinterpret_cast<const char*>(values),
                         reinterpret_cast<const char*>(values) + 8);
  write_raw(path,
            R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}})",
            data);
  const auto loaded = lorafed::load_safetensors(path);
  CHECK(at::equal(loaded.tensors.at("w"), at::tensor({1.5f, -2.0f})));
  CHECK(loaded.metadata.at("k") == "v");
  std::filesystem::remove(path);
}

TEST_CASE("corrupt files are refused with the reason", "[safetensors]") {
  const auto path = temp_file("corrupt.safetensors");
  SECTION("header longer than the file") {
    write_raw(path, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", {});
    std::filesystem::resize_file(path, 20);
    CHECK_THROWS_AS(lorafed::load_safetensors(path), lorafed::FormatError);
  }
  SECTION("offsets past the data") {
    write_raw(path, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
              std::vector<char>(4));
    CHECK_THROWS_WITH(lorafed::load_safetensors(path), Contains("data_offsets out of range"));
  }
  SECTION("shape and offsets disagree") {
    write_raw(path, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
              std::vector<char>(8));
    CHECK_THROWS_WITH(lorafed::load_safetensors(path), Contains("shape needs 12 bytes"));
  }
  SECTION("unknown dtype") {
    write_raw(path, R"({"w":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})",
              std::vector<char>(2));
    CHECK_THROWS_WITH(lorafed::load_safetensors(path), Contains("unsupported dtype"));
  }
  SECTION("overlapping tensors") {
    write_raw(
        path,
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
        std::vector<char>(8));
    CHECK_THROWS_WITH(lorafed::load_safetensors(path), Contains("overlap"));
  }
  SECTION("not JSON") {
    write_raw(path, "{not json", {});
    CHECK_THROWS_WITH(lorafed::load_safetensors(path), Contains("not valid JSON"));
  }
  std::filesystem::remove(path);
}

TEST_CASE("header numbers that overflow are refused with a FormatError, not a LibTorch error",
          "[safetensors]") {
  const auto path = temp_file("overflow.safetensors");
  // Each shape's byte count wraps to 0 in 64 bits, which the empty data
  // range [0, 0] matches; the strides of the zero-sized one overflow too.
  const std::string shape = GENERATE(as<std::string>{}, "[4294967296, 4294967296]",
                                     "[4611686018427387904]", "[0, 4611686018427387904, 4]");
  const std::string dtype = GENERATE(as<std::string>{}, "F32", "F64");
  INFO(shape << " " << dtype);
  write_raw(path,
            R"({"w":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":[0,0]}})",
            {});
  CHECK_THROWS_MATCHES(lorafed::load_safetensors(path), lorafed::FormatError,
                       Catch::Matchers::Predicate<lorafed::FormatError>([&](const auto& error) {
                         const std::string message = error.what();
                         return message.find(path.string()) != std::string::npos &&
                                message.find("tensor 'w'") != std::string::npos &&
                                message.find("overflows 64 bits") != std::string::npos;
                       }));
  std::filesystem::remove(path);
}

TEST_CASE("offsets beyond the file and negative dimensions are refused", "[safetensors]") {
  const auto path = temp_file("offsets.safetensors");
  SECTION("an end offset past 2^64") {
    write_raw(path, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})",
              std::vector<char>(8));
    CHECK_THROWS_AS(lorafed::load_safetensors(path), lorafed::FormatError);
  }
  SECTION("a negative dimension") {
    write_raw(path, R"({"w":{"dtype":"F32","shape":[-2, -4],"data_offsets":[0,32]}})",
              std::vector<char>(32));
    CHECK_THROWS_WITH(lorafed::load_safetensors(path), Contains("negative dimension"));
  }
  std::filesystem::remove(path);
}

TEST_CASE("a mapped file gives the tensors a load gives, and writes never reach the file",
          "[safetensors]") {
  const auto path = temp_file("mapped.safetensors");
  // The header padded to a multiple of 8 bytes (as the format allows) and a
  // one-byte tensor first put the float32 and bfloat16 tensors after it off
  // their alignment in the file: those the mapping must copy.
  std::string header = R"({"flag":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("w":{"dtype":"F32","shape":[2],"data_offsets":[1,9]},)"
                       R"("h":{"dtype":"BF16","shape":[2,2],"data_offsets":[9,17]}})";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  write_raw(path, header,
            {1, 0, 0, static_cast<char>(0x80), 0x3f, 0, 0, 0, 0x40,    // flag, w = {1, 2}
             0, 0x3f, 0, 0x40, 0, static_cast<char>(0xc0), 0, 0x3f});  // h
  const lorafed::SafetensorsFile loaded = lorafed::load_safetensors(path);
  lorafed::SafetensorsFile mapped = lorafed::map_safetensors(path);
  REQUIRE(mapped.tensors.size() == 3);
  for (const auto& [name, tensor] : loaded.tensors) {
    INFO(name);
    CHECK(mapped.tensors.at(name).scalar_type() == tensor.scalar_type());
    CHECK(at::equal(mapped.tensors.at(name), tensor));
  }
  CHECK(at::equal(mapped.tensors.at("w"), at::tensor({1.0F, 2.0F})));
  mapped.tensors.at("h").fill_(7);  // the mapping is private
  mapped.tensors.at("w").fill_(7);
  CHECK(at::equal(lorafed::load_safetensors(path).tensors.at("h"), loaded.tensors.at("h")));
  // The mapping outlives the file's SafetensorsFile as long as a tensor views it.
  const at::Tensor kept = lorafed::map_safetensors(path).tensors.at("h");
  CHECK(at::equal(kept, loaded.tensors.at("h")));

  write_raw(path, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
            std::vector<char>(8));
  CHECK_THROWS_WITH(lorafed::map_safetensors(path), Contains("shape needs 12 bytes"));
  write_raw(path, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
            std::vector<char>(4));
  CHECK_THROWS_WITH(lorafed::map_safetensors(path), Contains("data_offsets out of range"));
  CHECK_THROWS_AS(lorafed::map_safetensors(temp_file("absent.safetensors")), lorafed::FormatError);
  std::filesystem::remove(path);
}
