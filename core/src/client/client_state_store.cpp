#include "src/client/client_state_store.hpp"

#include <spdlog/spdlog.h>

#include <system_error>

#include "lorafed/error.hpp"
#include "lorafed/safetensors.hpp"

namespace lorafed {
namespace {

std::size_t bytes_of(const NamedTensors& tensors) {
  std::size_t total = 0;
  for (const auto& [name, tensor] : tensors) total += tensor.numel() * tensor.element_size();
  return total;
}

}  // namespace

ClientStateStore::ClientStateStore(std::size_t memory_budget_bytes, std::filesystem::path spill_dir)
    : budget_(memory_budget_bytes), dir_(std::move(spill_dir)) {}

ClientStateStore::~ClientStateStore() {
  if (!entries_.empty() || counts_.spills > 0) {
    spdlog::info("client state: {} clients, spilled {} times, read back {} times", entries_.size(),
                 counts_.spills, counts_.reloads);
  }
  if (!dir_created_) return;
  std::error_code error;
  std::filesystem::remove_all(dir_, error);
  if (error) spdlog::warn("client state: could not remove {}: {}", dir_.string(), error.message());
}

std::filesystem::path ClientStateStore::file(std::int64_t client) const {
  return dir_ / ("client-" + std::to_string(client) + ".safetensors");
}

std::optional<NamedTensors> ClientStateStore::get(std::int64_t client) {
  std::lock_guard lock(mutex_);
  const auto found = entries_.find(client);
  if (found == entries_.end()) return std::nullopt;
  Entry& entry = found->second;
  if (!entry.on_disk) {
    recency_.splice(recency_.end(), recency_, entry.recency);
    return entry.tensors;
  }
  ++counts_.reloads;
  return load_safetensors(file(client)).tensors;
}

void ClientStateStore::put(std::int64_t client, NamedTensors state) {
  std::lock_guard lock(mutex_);
  erase_locked(client);
  if (state.empty()) return;
  for (auto& [name, tensor] : state) {
    if (!tensor.device().is_cpu()) tensor = tensor.cpu();
  }
  Entry entry;
  entry.bytes = bytes_of(state);
  entry.tensors = std::move(state);
  entry.recency = recency_.insert(recency_.end(), client);
  bytes_in_memory_ += entry.bytes;
  entries_.emplace(client, std::move(entry));
  spill_until_within_budget();
}

void ClientStateStore::erase_locked(std::int64_t client) {
  const auto found = entries_.find(client);
  if (found == entries_.end()) return;
  Entry& entry = found->second;
  if (entry.on_disk) {
    std::error_code error;
    std::filesystem::remove(file(client), error);
  } else {
    bytes_in_memory_ -= entry.bytes;
    recency_.erase(entry.recency);
  }
  entries_.erase(found);
}

void ClientStateStore::spill_until_within_budget() {
  while (bytes_in_memory_ > budget_ && !recency_.empty()) {
    const std::int64_t client = recency_.front();
    Entry& entry = entries_.at(client);
    if (!dir_created_) {
      std::filesystem::create_directories(dir_);
      dir_created_ = true;
    }
    save_safetensors(file(client), entry.tensors);
    recency_.pop_front();
    bytes_in_memory_ -= entry.bytes;
    entry.tensors.clear();
    entry.on_disk = true;
    ++counts_.spills;
  }
}

ClientStateStore::Stats ClientStateStore::stats() const {
  std::lock_guard lock(mutex_);
  Stats stats = counts_;
  stats.bytes_in_memory = bytes_in_memory_;
  stats.clients_in_memory = recency_.size();
  stats.clients_on_disk = entries_.size() - recency_.size();
  return stats;
}

}  // namespace lorafed
