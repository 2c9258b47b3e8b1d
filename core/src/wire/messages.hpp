#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

#include "lorafed/config_value.hpp"
#include "lorafed/named_tensors.hpp"

namespace lorafed::wire {

// The C++ side of lorafed.fbs: one struct per Body kind (docs/protocol.md).
struct RegisterBody {
  std::int64_t max_rank = 0;
  std::string model_id;
  std::int64_t num_examples = 0;
};
struct FitInsBody {
  double alpha = 0;
  ConfigMap config;
  double merge_alpha = 0;  // alpha of the "merge." tensors, if any
};
struct FitResBody {
  double alpha = 0;
  std::int64_t num_examples = 0;
  Metrics metrics;
};
struct EvaluateInsBody {
  double alpha = 0;
  ConfigMap config;
};
struct EvaluateResBody {
  std::int64_t num_examples = 0;
  double loss = 0;
  Metrics metrics;
};
struct HeartbeatBody {};
struct ReconnectBody {
  std::uint32_t backoff_ms = 0;
};
struct ShutdownBody {
  std::string reason;
};

enum class ErrorCode : std::uint16_t {
  kUnknown = 0,
  kMalformed = 1,
  kUnsupportedVersion = 2,
  kUnexpected = 3,
  kInvalidTensor = 4,
  kTooLarge = 5,
  kClientFailure = 6,
  kNotRegistered = 7,
  kDisconnected = 8,
  kRefused = 9,
  kLeaving = 10,
};
struct ErrorBody {
  ErrorCode code = ErrorCode::kUnknown;
  std::string text;
};

using Body = std::variant<RegisterBody, FitInsBody, FitResBody, EvaluateInsBody, EvaluateResBody,
                          HeartbeatBody, ReconnectBody, ShutdownBody, ErrorBody>;

// The alternatives of Body, in order: what a header says a message holds.
enum class BodyKind : std::uint8_t {
  kRegister,
  kFitIns,
  kFitRes,
  kEvaluateIns,
  kEvaluateRes,
  kHeartbeat,
  kReconnect,
  kShutdown,
  kError,
};
inline BodyKind kind_of(const Body& body) {
  return static_cast<BodyKind>(body.index());
}

// The place of body type T in Body, checked at compile time: no magic indices.
template <class T, std::size_t I = 0>
constexpr std::size_t body_index() {
  static_assert(I < std::variant_size_v<Body>, "not a wire body type");
  if constexpr (std::is_same_v<std::variant_alternative_t<I, Body>, T>) {
    return I;
  } else {
    return body_index<T, I + 1>();
  }
}
template <class T>
constexpr BodyKind kind_of() {
  return static_cast<BodyKind>(body_index<T>());
}
static_assert(kind_of<RegisterBody>() == BodyKind::kRegister);
static_assert(kind_of<FitInsBody>() == BodyKind::kFitIns);
static_assert(kind_of<FitResBody>() == BodyKind::kFitRes);
static_assert(kind_of<EvaluateInsBody>() == BodyKind::kEvaluateIns);
static_assert(kind_of<EvaluateResBody>() == BodyKind::kEvaluateRes);
static_assert(kind_of<HeartbeatBody>() == BodyKind::kHeartbeat);
static_assert(kind_of<ReconnectBody>() == BodyKind::kReconnect);
static_assert(kind_of<ShutdownBody>() == BodyKind::kShutdown);
static_assert(kind_of<ErrorBody>() == BodyKind::kError);

// "Register", "FitIns", ...: for log lines and errors.
const char* body_name(const Body& body);
const char* body_name(BodyKind kind);

// One protocol message before encoding or after decoding.
struct Envelope {
  std::uint32_t round = 0;
  std::string sender;
  std::string recipient;
  Body body;
  NamedTensors tensors;  // float32 in memory, whatever the wire dtype
};

inline constexpr const char* kServerId = "server";
// Prefix of the tensors of an adapter to merge into the base (FitIns).
inline constexpr const char* kMergePrefix = "merge.";
// Prefix of shared model parameters (FitIns and FitRes; LG-FedAvg's head).
inline constexpr const char* kParameterPrefix = "param.";
// Prefix of tensors in the adapter's layout that are not a model (FitIns and
// FitRes; SCAFFOLD's control variates).
inline constexpr const char* kControlPrefix = "control.";

// Moves the tensors whose names start with `prefix` out of `tensors`, with
// the prefix removed.
NamedTensors take_prefixed(NamedTensors& tensors, const std::string& prefix);

}  // namespace lorafed::wire
