#include "src/wire/codec.hpp"

#include <ATen/ATen.h>
#include <flatbuffers/flatbuffers.h>

#include <sys/mman.h>

#include <cstring>
#include <set>

#include "lorafed/version.hpp"
#include "lorafed_generated.h"
#include "src/wire/bodies.hpp"

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
  // `small_bytes`: at least what the tensors below the large-tensor size
  // will take in packs, alignment included (pack_bound), so each pack is
  // allocated once, at its final size.
  FramePlanner(std::size_t max_frame_bytes, std::size_t small_bytes)
      : max_frame_bytes_(max_frame_bytes), small_left_(small_bytes) {
    frames_.emplace_back();  // frame 0: the envelope, filled in last
  }

  // A large tensor travels in frames of its own storage; the others are
  // copied into packs of at most max_frame_bytes.
  static bool is_large(std::size_t nbytes, std::size_t max_frame_bytes) {
    return nbytes >= max_frame_bytes / 16 && nbytes > 0;
  }
  static std::size_t pack_bound(std::size_t nbytes) { return aligned(nbytes); }

  // Places a tensor; returns (first frame, offset).
  std::pair<std::uint32_t, std::uint64_t> place(const at::Tensor& tensor) {
    const std::size_t nbytes = tensor.numel() * tensor.element_size();
    const auto* data = static_cast<const std::byte*>(tensor.data_ptr());
    if (is_large(nbytes, max_frame_bytes_)) {
      // Large: slices of the tensor's own storage, no copy.
      auto owner = std::make_shared<at::Tensor>(tensor);
      const auto first = static_cast<std::uint32_t>(frames_.size());
      for (std::size_t done = 0; done < nbytes; done += max_frame_bytes_) {
        frames_.push_back(Frame{data + done, std::min(max_frame_bytes_, nbytes - done), owner});
      }
      return {first, 0};
    }
    std::size_t offset = aligned(pack_used_);
    if (pack_index_ == 0 || offset + nbytes > pack_capacity_) {
      flush_pack();
      // Uninitialised: every byte sent is written below, padding included.
      pack_capacity_ = std::min(max_frame_bytes_, std::max(small_left_, pack_bound(nbytes)));
      pack_ = std::make_shared_for_overwrite<std::byte[]>(pack_capacity_);
      pack_index_ = static_cast<std::uint32_t>(frames_.size());
      frames_.emplace_back();
      offset = 0;
    }
    // The padding is zeros, never stale heap bytes.
    std::memset(pack_.get() + pack_used_, 0, offset - pack_used_);
    if (nbytes > 0) std::memcpy(pack_.get() + offset, data, nbytes);
    pack_used_ = offset + nbytes;
    small_left_ -= std::min(small_left_, pack_bound(nbytes));
    return {pack_index_, offset};
  }

  std::vector<Frame> finish(Frame envelope) {
    flush_pack();
    frames_[0] = std::move(envelope);
    return std::move(frames_);
  }
  std::uint32_t frame_count() const { return static_cast<std::uint32_t>(frames_.size()); }

 private:
  static std::size_t aligned(std::size_t bytes) {
    return (bytes + kPackAlignment - 1) / kPackAlignment * kPackAlignment;
  }
  void flush_pack() {
    if (pack_index_ != 0) frames_[pack_index_] = Frame{pack_.get(), pack_used_, pack_};
    pack_.reset();
    pack_used_ = 0;
    pack_capacity_ = 0;
    pack_index_ = 0;
  }

  std::size_t max_frame_bytes_;
  std::size_t small_left_;
  std::vector<Frame> frames_;
  std::shared_ptr<std::byte[]> pack_;
  std::size_t pack_used_ = 0;
  std::size_t pack_capacity_ = 0;
  std::uint32_t pack_index_ = 0;  // 0: no pack frame open
};

// Memory for a tensor to be assembled from several frames. Large ones get
// transparent huge pages: first touching fresh memory costs a page fault per
// 4 KiB page, which on virtual machines costs more than copying the bytes
// (docs/benchmarks.md, transport); 2 MiB pages cut the faults 512-fold.
at::Tensor assembly_buffer(at::IntArrayRef shape, const at::TensorOptions& options,
                           std::uint64_t nbytes) {
  constexpr std::size_t kHugePage = 2u << 20;
  if (nbytes < 2 * kHugePage) return at::empty(shape, options);
  const std::size_t length = nbytes + kHugePage;  // room to align to a huge page
  void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return at::empty(shape, options);
  const auto address = reinterpret_cast<std::uintptr_t>(base);
  void* aligned = reinterpret_cast<void*>((address + kHugePage - 1) & ~(kHugePage - 1));
  ::madvise(aligned, nbytes, MADV_HUGEPAGE);  // advice only: fine if refused
  return at::from_blob(
      aligned, shape, [base, length](void*) { ::munmap(base, length); }, options);
}

// The tensor at a checked location: a view of the received bytes when they
// lie within one suitably aligned frame (kept alive by the frame), else a copy.
at::Tensor read_tensor(const Message& message, const TensorLocation& location) {
  const at::ScalarType wire_type = scalar_type(location.dtype);
  if (location.nbytes == 0) return at::empty(location.shape, at::kFloat);
  const at::TensorOptions options = at::TensorOptions().dtype(wire_type);
  const Frame& head = message.frames[location.frame];
  at::Tensor tensor;
  if (head.size - location.offset >= location.nbytes &&
      reinterpret_cast<std::uintptr_t>(head.data + location.offset) % c10::elementSize(wire_type) ==
          0) {
    auto owner = head.owner;
    tensor = at::from_blob(
        const_cast<std::byte*>(head.data + location.offset), location.shape,
        [owner](void*) mutable { owner.reset(); }, options);
  } else {
    tensor = assembly_buffer(location.shape, options, location.nbytes);
    copy_tensor_bytes(message, location, static_cast<std::byte*>(tensor.data_ptr()));
  }
  return wire_type == at::kFloat ? tensor : tensor.to(at::kFloat);
}

}  // namespace

Message encode(const Envelope& envelope, const EncodeOptions& options) {
  if (options.max_frame_bytes < 1024) throw Error("max_frame_bytes must be at least 1024");
  // Room for the header's tensor entries from the start: a builder that
  // grows reallocates into fresh pages, and first-touch page faults are what
  // a small message costs most (docs/benchmarks.md, many virtual clients).
  flatbuffers::FlatBufferBuilder builder(1024 + 128 * envelope.tensors.size());
  const at::ScalarType wire_type = scalar_type(options.dtype);
  std::vector<at::Tensor> wire_tensors;
  wire_tensors.reserve(envelope.tensors.size());
  std::size_t small_bytes = 0;
  for (const auto& [name, tensor] : envelope.tensors) {
    const at::Tensor& wire_tensor =
        wire_tensors.emplace_back(tensor.to(at::kCPU).to(wire_type).contiguous());
    const std::size_t nbytes = wire_tensor.numel() * wire_tensor.element_size();
    if (!FramePlanner::is_large(nbytes, options.max_frame_bytes)) {
      small_bytes += FramePlanner::pack_bound(nbytes);
    }
  }
  FramePlanner planner(options.max_frame_bytes, small_bytes);
  std::vector<flatbuffers::Offset<fb::TensorEntry>> entries;
  auto next_wire_tensor = wire_tensors.begin();
  for (const auto& [name, tensor] : envelope.tensors) {
    const at::Tensor& wire_tensor = *next_wire_tensor++;
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

Envelope decode(const Message& message, const DecodeLimits& limits) {
  CheckedMessage checked = check_message(message, limits);
  Envelope decoded{checked.header.round,
                   std::move(checked.header.sender),
                   std::move(checked.header.recipient),
                   std::move(checked.body),
                   {}};
  for (const TensorLocation& location : checked.tensors) {
    decoded.tensors.emplace(location.name, read_tensor(message, location));
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
