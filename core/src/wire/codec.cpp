#include "src/wire/codec.hpp"

#include <ATen/ATen.h>
#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <set>

#include "lorafed/version.hpp"
#include "lorafed_generated.h"

namespace lorafed::wire {
namespace fb = lorafed::fb;

namespace {

constexpr std::size_t kPackAlignment = 64;

at::ScalarType scalar_type(WireDtype dtype) {
  switch (dtype) {
    case WireDtype::kFloat16:
      return at::kHalf;
    case WireDtype::kBFloat16:
      return at::kBFloat16;
    default:
      return at::kFloat;
  }
}

// ---- encoding -------------------------------------------------------------

class FramePlanner {
 public:
  explicit FramePlanner(std::size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {
    frames_.emplace_back();  // frame 0: the envelope, filled in last
  }

  // Places a tensor; returns (first frame, offset).
  std::pair<std::uint32_t, std::uint64_t> place(const at::Tensor& tensor) {
    const std::size_t nbytes = tensor.numel() * tensor.element_size();
    const auto* data = static_cast<const std::byte*>(tensor.data_ptr());
    if (nbytes >= max_frame_bytes_ / 16 && nbytes > 0) {
      // Large: slices of the tensor's own storage, no copy.
      auto owner = std::make_shared<at::Tensor>(tensor);
      const auto first = static_cast<std::uint32_t>(frames_.size());
      for (std::size_t done = 0; done < nbytes; done += max_frame_bytes_) {
        frames_.push_back(Frame{data + done, std::min(max_frame_bytes_, nbytes - done), owner});
      }
      return {first, 0};
    }
    std::size_t offset = (pack_.size() + kPackAlignment - 1) / kPackAlignment * kPackAlignment;
    if (pack_index_ == 0 || offset + nbytes > max_frame_bytes_) {
      flush_pack();
      pack_index_ = static_cast<std::uint32_t>(frames_.size());
      frames_.emplace_back();
      offset = 0;
    }
    pack_.resize(offset + nbytes);
    if (nbytes > 0) std::memcpy(pack_.data() + offset, data, nbytes);
    return {pack_index_, offset};
  }

  std::vector<Frame> finish(Frame envelope) {
    flush_pack();
    frames_[0] = std::move(envelope);
    return std::move(frames_);
  }

  std::uint32_t frame_count() const { return static_cast<std::uint32_t>(frames_.size()); }

 private:
  void flush_pack() {
    if (pack_index_ != 0) frames_[pack_index_] = Frame::adopt(std::move(pack_));
    pack_ = {};
    pack_index_ = 0;
  }

  std::size_t max_frame_bytes_;
  std::vector<Frame> frames_;
  std::vector<std::byte> pack_;
  std::uint32_t pack_index_ = 0;  // 0: no pack frame open
};

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::ConfigEntry>>> build_config(
    flatbuffers::FlatBufferBuilder& builder, const ConfigMap& config) {
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

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Metric>>> build_metrics(
    flatbuffers::FlatBufferBuilder& builder, const Metrics& metrics) {
  std::vector<flatbuffers::Offset<fb::Metric>> entries;
  for (const auto& [name, value] : metrics) {
    entries.push_back(fb::CreateMetric(builder, builder.CreateString(name), value));
  }
  return builder.CreateVector(entries);
}

std::pair<fb::Body, flatbuffers::Offset<void>> build_body(flatbuffers::FlatBufferBuilder& builder,
                                                          const Body& body) {
  struct Visitor {
    flatbuffers::FlatBufferBuilder& b;
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const RegisterBody& m) {
      return {
          fb::Body::Register,
          fb::CreateRegister(b, m.max_rank, b.CreateString(m.model_id), m.num_examples).Union()};
    }
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const FitInsBody& m) {
      return {fb::Body::FitIns,
              fb::CreateFitIns(b, m.alpha, build_config(b, m.config), m.merge_alpha).Union()};
    }
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const FitResBody& m) {
      return {fb::Body::FitRes,
              fb::CreateFitRes(b, m.alpha, m.num_examples, build_metrics(b, m.metrics)).Union()};
    }
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const EvaluateInsBody& m) {
      return {fb::Body::EvaluateIns,
              fb::CreateEvaluateIns(b, m.alpha, build_config(b, m.config)).Union()};
    }
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const EvaluateResBody& m) {
      return {
          fb::Body::EvaluateRes,
          fb::CreateEvaluateRes(b, m.num_examples, m.loss, build_metrics(b, m.metrics)).Union()};
    }
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const HeartbeatBody&) {
      return {fb::Body::Heartbeat, fb::CreateHeartbeat(b).Union()};
    }
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const ReconnectBody& m) {
      return {fb::Body::Reconnect, fb::CreateReconnect(b, m.backoff_ms).Union()};
    }
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const ShutdownBody& m) {
      return {fb::Body::Shutdown, fb::CreateShutdown(b, b.CreateString(m.reason)).Union()};
    }
    std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const ErrorBody& m) {
      return {
          fb::Body::Error,
          fb::CreateError(b, static_cast<fb::ErrorCode>(m.code), b.CreateString(m.text)).Union()};
    }
  };
  return std::visit(Visitor{builder}, body);
}

// ---- decoding -------------------------------------------------------------

[[noreturn]] void malformed(const std::string& what) {
  throw DecodeError(ErrorCode::kMalformed, what);
}

ConfigMap read_config(const flatbuffers::Vector<flatbuffers::Offset<fb::ConfigEntry>>* entries) {
  ConfigMap config;
  if (entries == nullptr) return config;
  for (const fb::ConfigEntry* entry : *entries) {
    const std::string key = entry->key()->str();
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
        config[key] = entry->string_value() ? entry->string_value()->str() : std::string();
        break;
      default:
        malformed("config entry '" + key + "' has an unknown value kind");
    }
  }
  return config;
}

Metrics read_metrics(const flatbuffers::Vector<flatbuffers::Offset<fb::Metric>>* entries) {
  Metrics metrics;
  if (entries == nullptr) return metrics;
  for (const fb::Metric* entry : *entries) metrics[entry->name()->str()] = entry->value();
  return metrics;
}

std::string str(const flatbuffers::String* text) {
  return text ? text->str() : std::string();
}

Body read_body(const fb::Envelope& envelope) {
  switch (envelope.body_type()) {
    case fb::Body::Register: {
      const auto* m = envelope.body_as_Register();
      return RegisterBody{m->max_rank(), str(m->model_id()), m->num_examples()};
    }
    case fb::Body::FitIns: {
      const auto* m = envelope.body_as_FitIns();
      return FitInsBody{m->alpha(), read_config(m->config()), m->merge_alpha()};
    }
    case fb::Body::FitRes: {
      const auto* m = envelope.body_as_FitRes();
      return FitResBody{m->alpha(), m->num_examples(), read_metrics(m->metrics())};
    }
    case fb::Body::EvaluateIns: {
      const auto* m = envelope.body_as_EvaluateIns();
      return EvaluateInsBody{m->alpha(), read_config(m->config())};
    }
    case fb::Body::EvaluateRes: {
      const auto* m = envelope.body_as_EvaluateRes();
      return EvaluateResBody{m->num_examples(), m->loss(), read_metrics(m->metrics())};
    }
    case fb::Body::Heartbeat:
      return HeartbeatBody{};
    case fb::Body::Reconnect:
      return ReconnectBody{envelope.body_as_Reconnect()->backoff_ms()};
    case fb::Body::Shutdown:
      return ShutdownBody{str(envelope.body_as_Shutdown()->reason())};
    case fb::Body::Error: {
      const auto* m = envelope.body_as_Error();
      return ErrorBody{static_cast<ErrorCode>(m->code()), str(m->text())};
    }
    default:
      malformed("unknown message body type");
  }
}

at::Tensor read_tensor(const Message& message, const fb::TensorEntry& entry,
                       const DecodeLimits& limits, std::uint64_t& total_bytes) {
  const std::string name = entry.name()->str();
  const std::string where = "tensor '" + name + "'";
  if (entry.dtype() < fb::DType::Float32 || entry.dtype() > fb::DType::BFloat16) {
    malformed(where + " has an unknown dtype");
  }
  const at::ScalarType wire_type = scalar_type(static_cast<WireDtype>(entry.dtype()));
  const auto* shape_vector = entry.shape();
  if (shape_vector->size() > limits.max_rank_dims) malformed(where + " has too many dimensions");
  std::vector<std::int64_t> shape;
  std::uint64_t numel = 1;
  for (std::int64_t dim : *shape_vector) {
    if (dim < 0) malformed(where + " has a negative dimension");
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(dim), &numel)) {
      throw DecodeError(ErrorCode::kTooLarge, where + " has an impossible shape");
    }
    shape.push_back(dim);
  }
  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(c10::elementSize(wire_type)),
                             &nbytes) ||
      nbytes != entry.nbytes()) {
    malformed(where + ": nbytes " + std::to_string(entry.nbytes()) +
              " does not match its shape and dtype");
  }
  total_bytes += nbytes;
  if (total_bytes > limits.max_message_bytes) {
    throw DecodeError(ErrorCode::kTooLarge, "message tensors exceed the limit of " +
                                                std::to_string(limits.max_message_bytes) +
                                                " bytes");
  }
  at::TensorOptions options = at::TensorOptions().dtype(wire_type);
  if (nbytes == 0) return at::empty(shape, at::kFloat);
  const std::size_t first = entry.frame();
  if (first < 1 || first >= message.frames.size())
    malformed(where + " points to a frame that does not exist");
  const Frame& head = message.frames[first];
  if (entry.offset() > head.size) malformed(where + " starts past the end of its frame");

  at::Tensor tensor;
  if (head.size - entry.offset() >= nbytes &&
      reinterpret_cast<std::uintptr_t>(head.data + entry.offset()) % c10::elementSize(wire_type) ==
          0) {
    // Within one frame: a view of the received bytes, kept alive by the frame.
    auto owner = head.owner;
    tensor = at::from_blob(
        const_cast<std::byte*>(head.data + entry.offset()), shape,
        [owner](void*) mutable { owner.reset(); }, options);
  } else {
    tensor = at::empty(shape, options);
    auto* out = static_cast<std::byte*>(tensor.data_ptr());
    std::uint64_t done = 0;
    std::size_t frame = first;
    std::size_t offset = entry.offset();
    while (done < nbytes) {
      if (frame >= message.frames.size()) malformed(where + " runs past the last frame");
      const Frame& part = message.frames[frame];
      const std::uint64_t take = std::min<std::uint64_t>(nbytes - done, part.size - offset);
      std::memcpy(out + done, part.data + offset, take);
      done += take;
      ++frame;
      offset = 0;
    }
  }
  return wire_type == at::kFloat ? tensor : tensor.to(at::kFloat);
}

}  // namespace

Message encode(const Envelope& envelope, const EncodeOptions& options) {
  if (options.max_frame_bytes < 1024) throw Error("max_frame_bytes must be at least 1024");
  flatbuffers::FlatBufferBuilder builder(1024);
  FramePlanner planner(options.max_frame_bytes);
  std::vector<flatbuffers::Offset<fb::TensorEntry>> entries;
  const at::ScalarType wire_type = scalar_type(options.dtype);
  for (const auto& [name, tensor] : envelope.tensors) {
    at::Tensor wire_tensor = tensor.to(at::kCPU).to(wire_type).contiguous();
    const auto [frame, offset] = planner.place(wire_tensor);
    entries.push_back(fb::CreateTensorEntry(
        builder, builder.CreateString(name), static_cast<fb::DType>(options.dtype),
        builder.CreateVector(wire_tensor.sizes().vec()), frame, offset,
        wire_tensor.numel() * wire_tensor.element_size()));
  }
  const auto tensors = builder.CreateVector(entries);
  const auto sender = builder.CreateString(envelope.sender);
  const auto recipient = builder.CreateString(envelope.recipient);
  const auto [body_type, body] = build_body(builder, envelope.body);
  fb::EnvelopeBuilder root(builder);
  root.add_protocol_version(kProtocolVersion);
  root.add_round(envelope.round);
  root.add_sender(sender);
  root.add_recipient(recipient);
  root.add_body_type(body_type);
  root.add_body(body);
  root.add_tensors(tensors);
  root.add_frame_count(planner.frame_count());
  fb::FinishEnvelopeBuffer(builder, root.Finish());

  auto buffer = std::make_shared<flatbuffers::DetachedBuffer>(builder.Release());
  Frame head{reinterpret_cast<const std::byte*>(buffer->data()), buffer->size(), buffer};
  return Message{envelope.recipient, planner.finish(std::move(head))};
}

namespace {

// Frame 0 checked and read in place; `aligned_copy` holds it when the frame
// itself is not aligned enough for FlatBuffers, and must outlive the result.
const fb::Envelope& verified_envelope(const Message& message, const DecodeLimits& limits,
                                      std::vector<std::byte>& aligned_copy) {
  if (message.frames.empty()) malformed("message has no frames");
  const Frame& head = message.frames[0];
  for (std::size_t i = 0; i < message.frames.size(); ++i) {
    if (message.frames[i].size > limits.max_frame_bytes) {
      throw DecodeError(ErrorCode::kTooLarge, "frame " + std::to_string(i) + " has " +
                                                  std::to_string(message.frames[i].size) +
                                                  " bytes, over the limit of " +
                                                  std::to_string(limits.max_frame_bytes));
    }
  }
  // FlatBuffers reads scalars in place, so the envelope must be aligned;
  // received frames normally are, a copy makes sure.
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(head.data);
  if (reinterpret_cast<std::uintptr_t>(bytes) % alignof(std::uint64_t) != 0) {
    aligned_copy.assign(head.data, head.data + head.size);
    bytes = reinterpret_cast<const std::uint8_t*>(aligned_copy.data());
  }
  flatbuffers::Verifier verifier(bytes, head.size, /*max_depth=*/32, /*max_tables=*/100000);
  if (!fb::VerifyEnvelopeBuffer(verifier)) malformed("envelope failed FlatBuffers verification");
  const fb::Envelope& envelope = *fb::GetEnvelope(bytes);
  if (envelope.protocol_version() != kProtocolVersion) {
    throw DecodeError(ErrorCode::kUnsupportedVersion,
                      "protocol version " + std::to_string(envelope.protocol_version()) +
                          " is not supported (this build speaks " +
                          std::to_string(kProtocolVersion) + ")");
  }
  if (envelope.frame_count() != message.frames.size()) {
    malformed("envelope announces " + std::to_string(envelope.frame_count()) + " frames but " +
              std::to_string(message.frames.size()) + " arrived");
  }
  return envelope;
}

}  // namespace

Header decode_header(const Message& message, const DecodeLimits& limits) {
  std::vector<std::byte> aligned_copy;
  const fb::Envelope& envelope = verified_envelope(message, limits, aligned_copy);
  const auto type = static_cast<int>(envelope.body_type());
  if (type < static_cast<int>(fb::Body::Register) || type > static_cast<int>(fb::Body::Error)) {
    malformed("unknown message body type");
  }
  return Header{envelope.round(), str(envelope.sender()), str(envelope.recipient()),
                static_cast<BodyKind>(type - static_cast<int>(fb::Body::Register))};
}

Envelope decode(const Message& message, const DecodeLimits& limits) {
  std::vector<std::byte> aligned_copy;
  const fb::Envelope& envelope = verified_envelope(message, limits, aligned_copy);
  Envelope decoded;
  decoded.round = envelope.round();
  decoded.sender = str(envelope.sender());
  decoded.recipient = str(envelope.recipient());
  decoded.body = read_body(envelope);
  if (const auto* entries = envelope.tensors()) {
    if (entries->size() > limits.max_tensors) {
      throw DecodeError(ErrorCode::kTooLarge,
                        "message has " + std::to_string(entries->size()) + " tensors");
    }
    std::uint64_t total_bytes = 0;
    for (const fb::TensorEntry* entry : *entries) {
      std::string name = entry->name()->str();
      if (decoded.tensors.contains(name)) malformed("tensor '" + name + "' appears twice");
      decoded.tensors.emplace(std::move(name), read_tensor(message, *entry, limits, total_bytes));
    }
  }
  return decoded;
}

std::uint64_t message_bytes(const Message& message) {
  std::uint64_t total = 0;
  for (const Frame& frame : message.frames) total += frame.size;
  return total;
}

WireDtype wire_dtype_from_name(const std::string& name) {
  if (name == "float32") return WireDtype::kFloat32;
  if (name == "float16") return WireDtype::kFloat16;
  if (name == "bfloat16") return WireDtype::kBFloat16;
  throw ConfigError("wire dtype must be \"float32\", \"float16\" or \"bfloat16\", got \"" + name +
                    "\"");
}

}  // namespace lorafed::wire
