#include "src/server/client_roster.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "lorafed/error.hpp"
#include "src/federation_config.hpp"

namespace lorafed {

ClientRoster::ClientRoster(ModelSpec spec, std::map<std::string, std::int64_t> configured_ranks)
    : spec_(std::move(spec)),
      largest_rank_(max_useful_rank(spec_)),
      configured_ranks_(std::move(configured_ranks)) {}

std::optional<std::string> ClientRoster::admit(const std::string& id,
                                               const wire::RegisterBody& body) {
  const auto configured = configured_ranks_.find(id);
  if (configured == configured_ranks_.end()) {
    return "'" + id + "' is not one of this federation's " +
           std::to_string(configured_ranks_.size()) +
           " client ids ([federation] num_clients in the server's configuration)";
  }
  if (body.model_id != spec_.model_id) {
    return "client model '" + body.model_id + "' is not the server's model '" + spec_.model_id +
           "'";
  }
  if (body.max_rank < 1 || body.max_rank > largest_rank_) {
    return "rank " + std::to_string(body.max_rank) + " is outside 1.." +
           std::to_string(largest_rank_) + " (the largest min(in, out) of the model's layers)";
  }
  if (body.max_rank != configured->second) {
    return "rank " + std::to_string(body.max_rank) + ", but the server's configuration gives " +
           id + " rank " + std::to_string(configured->second) +
           " ([lora]): start the client with the server's configuration";
  }
  if (body.num_examples < 0 || body.num_examples > kMaxExamples) {
    return "num_examples " + std::to_string(body.num_examples) + " is outside 0..2^40";
  }
  const auto known = clients_.find(id);
  if (known != clients_.end() && !known->second.alive) spdlog::info("{} is back", id);
  spdlog::debug("{} {} (rank {}, {} examples)",
                known != clients_.end() ? "re-registered" : "registered", id, body.max_rank,
                body.num_examples);
  if (known == clients_.end() || !known->second.alive) ++alive_count_;
  clients_[id] = Client{ClientInfo{id, body.max_rank, body.num_examples, body.model_id}, true};
  admitted_.insert(id);
  alive_stale_ = true;
  return std::nullopt;
}

bool ClientRoster::mark_lost(const std::string& id) {
  const auto client = clients_.find(id);
  if (client == clients_.end()) return false;
  if (client->second.alive) {
    --alive_count_;
    ++losses_;
    alive_stale_ = true;
  }
  client->second.alive = false;
  return true;
}

bool ClientRoster::alive(const std::string& id) const {
  const auto client = clients_.find(id);
  return client != clients_.end() && client->second.alive;
}

const ClientInfo& ClientRoster::info(const std::string& id) const {
  const auto client = clients_.find(id);
  if (client == clients_.end()) throw Error("client '" + id + "' is not registered");
  return client->second.info;
}

std::vector<ClientInfo> ClientRoster::infos(const std::vector<std::string>& ids) const {
  std::vector<ClientInfo> result;
  result.reserve(ids.size());
  for (const std::string& id : ids) result.push_back(info(id));
  return result;
}

void ClientRoster::refresh_alive() const {
  if (!alive_stale_) return;
  alive_ids_.clear();
  alive_infos_.clear();
  for (const auto& [id, client] : clients_) {
    if (!client.alive) continue;
    alive_ids_.push_back(id);
    alive_infos_.push_back(client.info);
  }
  alive_stale_ = false;
}

const std::vector<std::string>& ClientRoster::alive_ids() const {
  refresh_alive();
  return alive_ids_;
}

const std::vector<ClientInfo>& ClientRoster::alive_infos() const {
  refresh_alive();
  return alive_infos_;
}

std::vector<std::string> ClientRoster::ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, client] : clients_) ids.push_back(id);
  return ids;
}

std::set<std::string> ClientRoster::take_admitted() {
  return std::exchange(admitted_, {});
}

}  // namespace lorafed
