#include "src/wire/bodies.hpp"

#include <string>
#include <vector>

#include "src/wire/envelope_reader.hpp"
#include "src/wire/text.hpp"

namespace lorafed::wire {
namespace {

using Builder = flatbuffers::FlatBufferBuilder;
template <class T>
using Table = flatbuffers::Offset<T>;
using ConfigEntries = flatbuffers::Vector<flatbuffers::Offset<fb::ConfigEntry>>;
using MetricEntries = flatbuffers::Vector<flatbuffers::Offset<fb::Metric>>;

// --- the schema's union and the C++ variant list the bodies in one order ---
// A header's BodyKind is the union's type less one (NONE).
template <class T, fb::Body kTag>
constexpr bool same_place() {
  return body_index<T>() + 1 == static_cast<std::size_t>(kTag);
}
static_assert(same_place<RegisterBody, fb::Body::Register>());
static_assert(same_place<FitInsBody, fb::Body::FitIns>());
static_assert(same_place<FitResBody, fb::Body::FitRes>());
static_assert(same_place<EvaluateInsBody, fb::Body::EvaluateIns>());
static_assert(same_place<EvaluateResBody, fb::Body::EvaluateRes>());
static_assert(same_place<HeartbeatBody, fb::Body::Heartbeat>());
static_assert(same_place<ReconnectBody, fb::Body::Reconnect>());
static_assert(same_place<ShutdownBody, fb::Body::Shutdown>());
static_assert(same_place<ErrorBody, fb::Body::Error>());
static_assert(static_cast<std::size_t>(fb::Body::MAX) == std::variant_size_v<Body>,
              "lorafed.fbs has a body the C++ side does not know");
static_assert(static_cast<std::uint16_t>(fb::ErrorCode::MAX) ==
                  static_cast<std::uint16_t>(ErrorCode::kLeaving),
              "lorafed.fbs and messages.hpp disagree on the error codes");
static_assert(static_cast<std::size_t>(fb::ValueKind::MAX) + 1 == std::variant_size_v<ConfigValue>,
              "lorafed.fbs and ConfigValue disagree on the value kinds");

// --- config maps and metrics ------------------------------------------------

Table<ConfigEntries> to_fb(Builder& builder, const ConfigMap& config) {
  std::vector<flatbuffers::Offset<fb::ConfigEntry>> entries;
  for (const auto& [key, value] : config) {
    const auto key_offset = builder.CreateString(key);
    flatbuffers::Offset<flatbuffers::String> string_offset;
    if (const auto* text = std::get_if<std::string>(&value))
      string_offset = builder.CreateString(*text);
    fb::ConfigEntryBuilder entry(builder);
    entry.add_key(key_offset);
    entry.add_kind(static_cast<fb::ValueKind>(value.index()));
    if (const auto* b = std::get_if<bool>(&value)) entry.add_bool_value(*b);
    if (const auto* i = std::get_if<std::int64_t>(&value)) entry.add_int_value(*i);
    if (const auto* f = std::get_if<double>(&value)) entry.add_float_value(*f);
    if (!string_offset.IsNull()) entry.add_string_value(string_offset);
    entries.push_back(entry.Finish());
  }
  return builder.CreateVector(entries);
}
ConfigMap from_fb(const ConfigEntries* entries) {
  ConfigMap config;
  if (entries == nullptr) return config;
  for (const fb::ConfigEntry* entry : *entries) {
    const std::string key = read_text(entry->key(), "a config key");
    switch (entry->kind()) {
      case fb::ValueKind::Bool:
        config[key] = entry->bool_value();
        break;
      case fb::ValueKind::Int:
        config[key] = entry->int_value();
        break;
      case fb::ValueKind::Float:
        config[key] = entry->float_value();
        break;
      case fb::ValueKind::String:
        config[key] = read_text(entry->string_value(), "a config value");
        break;
      default:
        malformed("config entry '" + key + "' has an unknown value kind");
    }
  }
  return config;
}

Table<MetricEntries> to_fb(Builder& builder, const Metrics& metrics) {
  std::vector<flatbuffers::Offset<fb::Metric>> entries;
  for (const auto& [name, value] : metrics) {
    entries.push_back(fb::CreateMetric(builder, builder.CreateString(name), value));
  }
  return builder.CreateVector(entries);
}
Metrics from_fb(const MetricEntries* entries) {
  Metrics metrics;
  if (entries == nullptr) return metrics;
  for (const fb::Metric* entry : *entries) {
    metrics[read_text(entry->name(), "a metric name")] = entry->value();
  }
  return metrics;
}

// --- one pair per body ------------------------------------------------------

Table<fb::Register> to_fb(Builder& b, const RegisterBody& m) {
  return fb::CreateRegister(b, m.max_rank, b.CreateString(m.model_id), m.num_examples);
}
RegisterBody from_fb(const fb::Register& m) {
  return RegisterBody{m.max_rank(), read_text(m.model_id(), "the model id"), m.num_examples()};
}

Table<fb::FitIns> to_fb(Builder& b, const FitInsBody& m) {
  return fb::CreateFitIns(b, m.alpha, to_fb(b, m.config), m.merge_alpha);
}
FitInsBody from_fb(const fb::FitIns& m) {
  return FitInsBody{m.alpha(), from_fb(m.config()), m.merge_alpha()};
}

Table<fb::FitRes> to_fb(Builder& b, const FitResBody& m) {
  return fb::CreateFitRes(b, m.alpha, m.num_examples, to_fb(b, m.metrics));
}
FitResBody from_fb(const fb::FitRes& m) {
  return FitResBody{m.alpha(), m.num_examples(), from_fb(m.metrics())};
}

Table<fb::EvaluateIns> to_fb(Builder& b, const EvaluateInsBody& m) {
  return fb::CreateEvaluateIns(b, m.alpha, to_fb(b, m.config));
}
EvaluateInsBody from_fb(const fb::EvaluateIns& m) {
  return EvaluateInsBody{m.alpha(), from_fb(m.config())};
}

Table<fb::EvaluateRes> to_fb(Builder& b, const EvaluateResBody& m) {
  return fb::CreateEvaluateRes(b, m.num_examples, m.loss, to_fb(b, m.metrics));
}
EvaluateResBody from_fb(const fb::EvaluateRes& m) {
  return EvaluateResBody{m.num_examples(), m.loss(), from_fb(m.metrics())};
}

Table<fb::Heartbeat> to_fb(Builder& b, const HeartbeatBody&) {
  return fb::CreateHeartbeat(b);
}
HeartbeatBody from_fb(const fb::Heartbeat&) {
  return HeartbeatBody{};
}

Table<fb::Reconnect> to_fb(Builder& b, const ReconnectBody& m) {
  return fb::CreateReconnect(b, m.backoff_ms);
}
ReconnectBody from_fb(const fb::Reconnect& m) {
  return ReconnectBody{m.backoff_ms()};
}

Table<fb::Shutdown> to_fb(Builder& b, const ShutdownBody& m) {
  return fb::CreateShutdown(b, b.CreateString(m.reason));
}
ShutdownBody from_fb(const fb::Shutdown& m) {
  return ShutdownBody{read_text(m.reason(), "a shutdown reason")};
}

Table<fb::Error> to_fb(Builder& b, const ErrorBody& m) {
  return fb::CreateError(b, static_cast<fb::ErrorCode>(m.code), b.CreateString(m.text));
}
ErrorBody from_fb(const fb::Error& m) {
  return ErrorBody{static_cast<ErrorCode>(m.code()), read_text(m.text(), "an error text")};
}

// The table type an Offset points to.
template <class>
struct TableOf;
template <class T>
struct TableOf<flatbuffers::Offset<T>> {
  using type = T;
};

// The union tag of body type T: its place in Body, plus one for NONE.
template <class T>
constexpr fb::Body tag_of() {
  return static_cast<fb::Body>(body_index<T>() + 1);
}

// The table of the union's member at place I, read as body I.
template <std::size_t I = 0>
Body read_member(const fb::Envelope& envelope) {
  if constexpr (I == std::variant_size_v<Body>) {
    malformed("unknown message body type");
  } else {
    using T = std::variant_alternative_t<I, Body>;
    if (envelope.body_type() != tag_of<T>()) return read_member<I + 1>(envelope);
    using FbTable =
        typename TableOf<decltype(to_fb(std::declval<Builder&>(), std::declval<const T&>()))>::type;
    return from_fb(*static_cast<const FbTable*>(envelope.body()));
  }
}

}  // namespace

std::pair<fb::Body, flatbuffers::Offset<void>> build_body(Builder& builder, const Body& body) {
  return std::visit(
      [&builder](const auto& member) -> std::pair<fb::Body, flatbuffers::Offset<void>> {
        using T = std::decay_t<decltype(member)>;
        return {tag_of<T>(), to_fb(builder, member).Union()};
      },
      body);
}

Body read_body(const fb::Envelope& envelope) {
  if (envelope.body() == nullptr) malformed("message has no body");
  return read_member(envelope);
}

}  // namespace lorafed::wire
