#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "fuzz/update_checks.hpp"
#include "lorafed/error.hpp"
#include "src/wire/codec.hpp"
#include "src/wire/text.hpp"

using namespace lorafed::wire;
using Catch::Matchers::Contains;

namespace {

Envelope fit_res_with(lorafed::NamedTensors tensors) {
  return Envelope{3, "client-1", kServerId, FitResBody{16.0, 1234, {{"train_loss", 0.25}}},
                  std::move(tensors)};
}

// A copy of every frame's bytes, as a receiver sees them.
lorafed::Message received_copy(const lorafed::Message& message) {
  lorafed::Message copy{message.peer, {}};
  for (const auto& frame : message.frames)
    copy.frames.push_back(lorafed::Frame::copy_of(frame.bytes()));
  return copy;
}

}  // namespace

TEST_CASE("every message kind survives encode and decode", "[wire]") {
  const std::vector<Body> bodies = {
      RegisterBody{16, "mlp-784x256", 5000},
      FitInsBody{32.0,
                 {{"lr", 0.1},
                  {"prune", true},
                  {"rank", std::int64_t{8}},
                  {"mode", std::string("merge")}}},
      FitResBody{32.0, 77, {{"train_loss", 0.5}}},
      EvaluateInsBody{8.0, {}},
      EvaluateResBody{100, 0.75, {{"accuracy", 0.9}}},
      HeartbeatBody{},
      ReconnectBody{250},
      ShutdownBody{"done"},
      ErrorBody{ErrorCode::kInvalidTensor, "bad shape"},
  };
  for (const Body& body : bodies) {
    INFO(body_name(body));
    const Envelope sent{5, "client-2", kServerId, body, {}};
    const Envelope got = decode(received_copy(encode(sent)));
    CHECK(got.round == 5);
    CHECK(got.sender == "client-2");
    CHECK(got.recipient == kServerId);
    REQUIRE(got.body.index() == body.index());
    if (const auto* fit = std::get_if<FitInsBody>(&got.body)) {
      CHECK(fit->alpha == 32.0);
      CHECK(std::get<double>(fit->config.at("lr")) == 0.1);
      CHECK(std::get<bool>(fit->config.at("prune")));
      CHECK(std::get<std::int64_t>(fit->config.at("rank")) == 8);
      CHECK(std::get<std::string>(fit->config.at("mode")) == "merge");
    }
    if (const auto* reg = std::get_if<RegisterBody>(&got.body)) {
      CHECK(reg->max_rank == 16);
      CHECK(reg->model_id == "mlp-784x256");
      CHECK(reg->num_examples == 5000);
    }
    if (const auto* error = std::get_if<ErrorBody>(&got.body)) {
      CHECK(error->code == ErrorCode::kInvalidTensor);
      CHECK(error->text == "bad shape");
    }
  }
}

TEST_CASE("tensors round-trip exactly, small ones packed and large ones framed", "[wire]") {
  lorafed::NamedTensors tensors = {{"fc1.lora_A", at::randn({8, 784})},
                                   {"fc1.lora_B", at::randn({256, 8})},
                                   {"head.lora_A", at::randn({2, 3})},
                                   {"scalar", at::randn({})}};
  const lorafed::Message message =
      encode(fit_res_with(tensors), EncodeOptions{64 * 1024, WireDtype::kFloat32});
  const Envelope got = decode(received_copy(message), DecodeLimits{64 * 1024});
  REQUIRE(got.tensors.size() == tensors.size());
  for (const auto& [name, tensor] : tensors) {
    INFO(name);
    CHECK(at::equal(got.tensors.at(name), tensor));
  }
}

TEST_CASE("small tensors fill packs of at most max_frame_bytes, padded with zeros", "[wire]") {
  // Tensors of 60 floats (240 bytes, placed every 256: below 4096 / 16, so
  // packed) under 4 KiB frames: 16 fit in a pack, so 10 take one, 20 two.
  for (const int count : {10, 20}) {
    lorafed::NamedTensors tensors;
    for (int i = 0; i < count; ++i) {
      tensors.emplace("t" + std::to_string(1000 + i), at::full({60}, static_cast<float>(i + 1)));
    }
    // Freed memory full of a pattern first: a pack that reused it unwritten
    // would send the pattern in its padding.
    { std::vector<unsigned char> stale(8192, 0xAB); }
    const lorafed::Message message =
        encode(fit_res_with(tensors), EncodeOptions{4096, WireDtype::kFloat32});
    INFO(count << " tensors");
    REQUIRE(message.frames.size() == (count == 10 ? 2u : 3u));
    CHECK(message.frames[1].size == 256 * (std::min(count, 16) - 1) + 240);
    for (std::size_t frame = 1; frame < message.frames.size(); ++frame) {
      CHECK(message.frames[frame].size <= 4096);
      const std::span<const std::byte> bytes = message.frames[frame].bytes();
      for (std::size_t at = 0; at < bytes.size(); ++at) {
        if (at % 256 < 240) continue;  // a tensor's bytes
        if (bytes[at] != std::byte{0}) FAIL("padding byte " << at << " of frame " << frame);
      }
    }
    const Envelope got = decode(received_copy(message), DecodeLimits{4096});
    for (const auto& [name, tensor] : tensors) CHECK(at::equal(got.tensors.at(name), tensor));
  }
}

TEST_CASE("a tensor larger than one frame is split over frames of at most max_frame_bytes",
          "[wire]") {
  const std::size_t max_frame = 4096;
  const at::Tensor big = at::randn({3000});  // 12,000 bytes: three frames
  const lorafed::Message message =
      encode(fit_res_with({{"big", big}}), EncodeOptions{max_frame, WireDtype::kFloat32});
  REQUIRE(message.frames.size() == 1 + 3);
  for (std::size_t i = 1; i < message.frames.size(); ++i)
    CHECK(message.frames[i].size <= max_frame);
  CHECK(message.frames[1].size + message.frames[2].size + message.frames[3].size == 12000);
  const Envelope got = decode(received_copy(message), DecodeLimits{max_frame});
  CHECK(at::equal(got.tensors.at("big"), big));

  // From 4 MiB on, the tensor is assembled in memory of its own (huge pages),
  // which outlives the message.
  const at::Tensor huge = at::randn({3, 700'000});  // 8.4 MB over 9 frames of 1 MiB
  Envelope assembled = decode(received_copy(encode(fit_res_with({{"huge", huge}}),
                                                   EncodeOptions{1 << 20, WireDtype::kFloat32})),
                              DecodeLimits{1 << 20});
  const at::Tensor kept = assembled.tensors.at("huge");
  assembled = Envelope{};
  CHECK(at::equal(kept, huge));
  CHECK(kept.is_contiguous());
}

TEST_CASE("large tensors are sent without copying their storage", "[wire]") {
  const at::Tensor big = at::randn({1024});  // 4096 bytes: exactly one frame
  const lorafed::Message message =
      encode(fit_res_with({{"big", big}}), EncodeOptions{4096, WireDtype::kFloat32});
  REQUIRE(message.frames.size() == 2);
  CHECK(message.frames[1].data == static_cast<const std::byte*>(big.data_ptr()));
  // A receiver handed those very frames (the inproc transport) decodes a view, not a copy.
  const Envelope got = decode(message, DecodeLimits{4096});
  CHECK(got.tensors.at("big").data_ptr() == big.data_ptr());
}

TEST_CASE("half-precision wire dtypes round-trip to float32 within their precision", "[wire]") {
  const at::Tensor tensor = at::randn({64, 64});
  for (WireDtype dtype : {WireDtype::kFloat16, WireDtype::kBFloat16}) {
    const lorafed::Message message =
        encode(fit_res_with({{"t", tensor}}), EncodeOptions{1 << 20, dtype});
    const Envelope got = decode(received_copy(message));
    CHECK(got.tensors.at("t").scalar_type() == at::kFloat);
    CHECK(at::allclose(got.tensors.at("t"), tensor, 1e-2, 1e-2));
    CHECK(message_bytes(message) < 64 * 64 * 4);
  }
}

TEST_CASE("corrupted and hostile messages are rejected, never trusted", "[wire]") {
  const lorafed::Message good =
      encode(fit_res_with({{"a", at::randn({16, 16})}}), EncodeOptions{1 << 20});
  lorafed::Message bad = received_copy(good);
  SECTION("flipped bytes in the envelope") {
    std::vector<std::byte> bytes(bad.frames[0].bytes().begin(), bad.frames[0].bytes().end());
    for (std::size_t i = 0; i < bytes.size(); i += 3) bytes[i] = static_cast<std::byte>(0xA5);
    bad.frames[0] = lorafed::Frame::adopt(std::move(bytes));
    CHECK_THROWS_AS(decode(bad), DecodeError);
  }
  SECTION("truncated envelope") {
    bad.frames[0] = lorafed::Frame::copy_of(bad.frames[0].bytes().first(bad.frames[0].size / 2));
    CHECK_THROWS_AS(decode(bad), DecodeError);
  }
  SECTION("random bytes") {
    std::vector<std::byte> noise(200);
    for (std::size_t i = 0; i < noise.size(); ++i)
      noise[i] = static_cast<std::byte>((i * 7919) % 251);
    bad.frames = {lorafed::Frame::adopt(noise)};
    CHECK_THROWS_AS(decode(bad), DecodeError);
  }
  SECTION("a missing tensor frame") {
    bad.frames.pop_back();
    CHECK_THROWS_WITH(decode(bad), Contains("frames"));
  }
  SECTION("a tensor frame shorter than the table says") {
    bad.frames[1] = lorafed::Frame::copy_of(bad.frames[1].bytes().first(100));
    CHECK_THROWS_AS(decode(bad), DecodeError);
  }
  SECTION("a frame over the size limit") {
    try {
      decode(bad, DecodeLimits{512});
      FAIL("an oversized frame was accepted");
    } catch (const DecodeError& error) {
      CHECK(error.code() == ErrorCode::kTooLarge);
    }
  }
  SECTION("total tensor bytes over the message limit") {
    DecodeLimits limits;
    limits.max_message_bytes = 100;
    CHECK_THROWS_WITH(decode(bad, limits), Contains("exceed the limit"));
  }
  SECTION("no frames at all") {
    bad.frames.clear();
    CHECK_THROWS_AS(decode(bad), DecodeError);
  }
}

// Inputs on which the fuzzer once found a bug (tests/fuzz/regressions/). Each
// must be decoded and checked as an update (fuzz/update_checks.hpp), or
// refused with a FormatError; under the sanitizer build
// (scripts/test.sh) a misaligned load or an overrun also fails this test.
TEST_CASE("every input the fuzzer once broke is decoded or refused cleanly", "[wire]") {
  std::size_t replayed = 0;
  for (const auto& file : std::filesystem::directory_iterator(LORAFED_FUZZ_REGRESSIONS_DIR)) {
    std::ifstream in(file.path(), std::ios::binary);
    const std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const lorafed::Message message = lorafed::fuzz::message_from_input(
        reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    INFO(file.path().filename().string());
    try {
      decode_header(message);
      const Envelope envelope = decode(message);
      for (const auto& [name, tensor] : envelope.tensors) CHECK(tensor.defined());
      lorafed::fuzz::check_update(envelope.tensors, envelope.body);
    } catch (const lorafed::FormatError&) {  // DecodeError is one
    }
    ++replayed;
  }
  CHECK(replayed > 0);
}

TEST_CASE("the wire dtype names are checked", "[wire]") {
  CHECK(wire_dtype_from_name("bfloat16") == WireDtype::kBFloat16);
  CHECK_THROWS_AS(wire_dtype_from_name("float8"), lorafed::ConfigError);
}

TEST_CASE("a string that is not UTF-8 makes a message malformed, wherever it is", "[wire]") {
  CHECK(is_utf8("plain ascii"));
  CHECK(is_utf8("r\xC3\xA9sum\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é, €, an emoji
  for (const std::string bad : {"\xff", "a\x80", "\xC0\xAF", "\xE2\x82", "\xED\xA0\x80",
                                "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80"}) {
    INFO(bad.size());
    CHECK_FALSE(is_utf8(bad));
  }
  const std::vector<Envelope> hostile = {
      Envelope{1, "client-0", kServerId, ErrorBody{ErrorCode::kClientFailure, "no \xff"}, {}},
      Envelope{1, "client-0", kServerId, FitResBody{1, 10, {{"loss\xfe", 1.0}}}, {}},
      Envelope{0, "client-\xC0\xAF", kServerId, HeartbeatBody{}, {}},
      Envelope{0, "client-0", kServerId, RegisterBody{4, "mlp\xED\xA0\x80", 1}, {}},
      Envelope{1, kServerId, "client-0", FitInsBody{1, {{"rule\xff", std::string("x")}}, 0}, {}},
  };
  for (const Envelope& envelope : hostile) {
    INFO(body_name(envelope.body));
    const lorafed::Message message = encode(envelope);
    CHECK_THROWS_MATCHES(decode(message), DecodeError,
                         Catch::Matchers::Predicate<DecodeError>([](const DecodeError& error) {
                           return error.code() == ErrorCode::kMalformed &&
                                  std::string(error.what()).find("not UTF-8") != std::string::npos;
                         }));
  }
}
