#pragma once
// A SentencePiece model file (tokenizer.model: the ModelProto of
// SentencePiece's sentencepiece_model.proto, in protobuf's wire format), read
// and written by lorafed itself. Debian's libsentencepiece carries its own
// copy of protobuf 3.14 whose exported symbols collide with the protobuf
// 3.21 LibTorch loads, and a process that loads both crashes before main
// (docs/dependencies.md); the format is small enough to read here instead.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lorafed::text {

// The piece that stands for a space (when escape_whitespaces is set): ▁, U+2581.
inline constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";

// SentencePiece's piece types, numbered as the format numbers them.
enum class PieceType : std::uint8_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct SentencePiece {
  std::string text;  // "▁the", "<s>", "<0x0A>"
  float score = 0.0F;
  PieceType type = PieceType::kNormal;
};

// The parts of a model that encoding and decoding use. Only BPE models
// (Llama-2, TinyLlama, Mistral) with the identity normalizer are read; the
// rest of the format (training settings) is skipped when read and left out
// when written.
struct SentencePieceModel {
  std::vector<SentencePiece> pieces;  // the id of a piece is its index
  bool byte_fallback = false;         // unknown characters are written as <0xXX> pieces
  std::string bos_piece = "<s>";      // BOS / EOS: these control pieces, where the model has them
  std::string eos_piece = "</s>";
  // The normalizer (protobuf's defaults where the file is silent).
  bool add_dummy_prefix = true;          // "▁" before the text
  bool remove_extra_whitespaces = true;  // leading, trailing and repeated spaces dropped
  bool escape_whitespaces = true;        // " " written as "▁"
};

// Bounds on what a model file may hold, far above any published model's
// (Llama-2's tokenizer.model: 500 KB, 32,000 pieces of at most 16 characters).
inline constexpr std::uintmax_t kMaxSentencePieceFileBytes = 64U << 20U;
inline constexpr std::size_t kMaxSentencePieces = 1U << 21U;
inline constexpr std::size_t kMaxSentencePieceBytes = 1024;

// The model in `path`. A lorafed::FormatError names the file and what is
// wrong: not the wire format, a bound above passed, an empty, repeated or
// non-UTF-8 piece, a score that is not finite, no unknown piece or more
// than one, byte pieces missing under byte fallback, or what lorafed does
// not read (a unigram model, a precompiled normalizer such as nmt_nfkc,
// unused pieces, whitespace as a suffix), by name.
SentencePieceModel read_sentencepiece_model(const std::filesystem::path& path);

// The file's bytes for `model`, as SentencePiece reads them: BPE, the
// normalizer named "identity", unk / bos / eos ids where the pieces are.
std::string serialize_sentencepiece_model(const SentencePieceModel& model);

// The byte a "<0xXX>" piece stands for, or nullopt.
std::optional<unsigned char> byte_of_piece(std::string_view piece);
std::string piece_of_byte(unsigned char byte);

}  // namespace lorafed::text
